"""Open documents and their tree-sitter trees.

State changes only through ordered notifications (didOpen / didChange / didClose); requests
work on an immutable :class:`DocumentSnapshot` taken when they start, so a keystroke arriving
while a model call is in flight never changes the text a request is looking at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from lsprotocol import types
from pygls.uris import to_fs_path

from spark_ls.context.document import SourceDocument
from spark_ls.context.languages import language_for
from spark_ls.server.convert import LineIndex, range_to_offsets


@dataclass(frozen=True)
class DocumentSnapshot:
    uri: str
    path: str
    version: int
    language_id: str
    source: object  # spark_ls.context.document.Snapshot

    @property
    def text(self) -> str:
        return self.source.text

    def index(self) -> LineIndex:
        return LineIndex(self.source.text)


class OpenDocument:
    __slots__ = ("uri", "path", "version", "language_id", "document", "_snapshot")

    def __init__(self, uri: str, version: int, language_id: str, text: str) -> None:
        self.uri = uri
        self.path = to_fs_path(uri) or uri
        self.version = version
        self.language_id = language_id
        language = language_for(path=self.path, language_id=language_id)
        self.document = SourceDocument(text, language)
        self._snapshot: DocumentSnapshot | None = None

    def apply(self, version: int, changes: Sequence[types.TextDocumentContentChangeEvent], encoding: str) -> None:
        for change in changes:
            rng = getattr(change, "range", None)
            if rng is None:  # full-document change
                self.document.apply_change(0, len(self.document.text), change.text)
            else:
                start, end = range_to_offsets(LineIndex(self.document.text), rng, encoding)
                self.document.apply_change(start, end, change.text)
        self.version = version
        self._snapshot = None

    def snapshot(self) -> DocumentSnapshot:
        if self._snapshot is None:
            self._snapshot = DocumentSnapshot(
                self.uri, self.path, self.version, self.language_id, self.document.snapshot()
            )
        return self._snapshot


class DocumentNotOpen(LookupError):
    def __init__(self, uri: str) -> None:
        super().__init__(f"spark-ls has no open document {uri}; open it in the editor first")
        self.uri = uri


class DocumentStore:
    def __init__(self) -> None:
        self._docs: dict[str, OpenDocument] = {}

    def open(self, uri: str, version: int, language_id: str, text: str) -> OpenDocument:
        doc = OpenDocument(uri, version, language_id, text)
        self._docs[uri] = doc
        return doc

    def change(
        self, uri: str, version: int, changes: Sequence[types.TextDocumentContentChangeEvent], encoding: str
    ) -> OpenDocument:
        doc = self._docs.get(uri)
        if doc is None:
            raise DocumentNotOpen(uri)
        doc.apply(version, changes, encoding)
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def get(self, uri: str) -> OpenDocument | None:
        return self._docs.get(uri)

    def snapshot(self, uri: str) -> DocumentSnapshot:
        doc = self._docs.get(uri)
        if doc is None:
            raise DocumentNotOpen(uri)
        return doc.snapshot()

    def others(self, uri: str) -> list[tuple[str, object]]:
        """(path, snapshot) of every other open document of the same language, for context."""
        doc = self._docs.get(uri)
        if doc is None:
            return []
        language = doc.document.language
        return [
            (d.path, d.snapshot().source)
            for u, d in self._docs.items()
            if u != uri and d.document.language is language and language is not None
        ]

    def __iter__(self) -> Iterator[OpenDocument]:
        return iter(list(self._docs.values()))
