"""didOpen / didChange / didClose: the only handlers that change document state.

They update the document store and tell the registered features (server/features.py); they do
not know which features exist.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lsprotocol import types

from spark_ls.server.documents import DocumentNotOpen, OpenDocument, oversized_message

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server")


def _announce_size(ls: SparkLanguageServer, doc: OpenDocument) -> None:
    """Tell the user once when a document is too large for actions (again if it shrinks and regrows)."""
    warned = ls.documents.warned_oversized
    if not doc.oversized:
        warned.discard(doc.uri)
    elif doc.uri not in warned:
        warned.add(doc.uri)
        ls.notify_user("warning", oversized_message(doc))


def register(server: SparkLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SparkLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        opened = ls.documents.open(doc.uri, doc.version, doc.language_id, doc.text)
        _announce_size(ls, opened)
        ls.features.document_opened(doc.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SparkLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        try:
            changed = ls.documents.change(uri, params.text_document.version, params.content_changes)
        except DocumentNotOpen as exc:
            log.warning("%s", exc)
            return
        _announce_size(ls, changed)
        ls.features.document_changed(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SparkLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.close(uri)
        ls.features.document_closed(uri)
