"""didOpen / didChange / didClose: the only handlers that change document state."""

from __future__ import annotations

import logging

from lsprotocol import types

from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.documents import DocumentNotOpen

log = logging.getLogger("spark_ls.server")


def register(server: SparkLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: SparkLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.documents.open(doc.uri, doc.version, doc.language_id, doc.text)
        ls.diagnostics.schedule(doc.uri, immediate=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: SparkLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        try:
            ls.documents.change(uri, params.text_document.version, params.content_changes, ls.encoding)
        except DocumentNotOpen as exc:
            log.warning("%s", exc)
            return
        ls.prefetcher.invalidate(uri)
        ls.diagnostics.schedule(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: SparkLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.close(uri)
        ls.prefetcher.invalidate(uri)
        ls.diagnostics.clear(uri)
