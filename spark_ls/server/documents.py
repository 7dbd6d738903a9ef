"""Open documents and their tree-sitter trees.

State changes only through ordered notifications (didOpen / didChange / didClose); requests
work on an immutable :class:`DocumentSnapshot` taken when they start, so a keystroke arriving
while a model call is in flight never changes the text a request is looking at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from lsprotocol import types
from pygls.uris import to_fs_path

from spark_ls.config import Settings
from spark_ls.context.document import Snapshot, SourceDocument
from spark_ls.context.languages import language_for
from spark_ls.server.convert import UTF16, LineIndex, range_to_offsets


@dataclass(frozen=True)
class DocumentSnapshot:
    """One version of a document, with what a request needs to read it: the settings and the
    position encoding in force when it was taken."""

    uri: str
    path: str
    version: int
    language_id: str
    source: Snapshot
    settings: Settings
    encoding: str = UTF16

    @property
    def text(self) -> str:
        return self.source.text

    @cached_property
    def _index(self) -> LineIndex:
        # The document keeps its line table up to date per edit: no rescan of the whole text.
        return LineIndex.from_line_starts(self.source.text, self.source.line_starts())

    def index(self) -> LineIndex:
        return self._index


# Above this many characters a document is kept in sync but not parsed and gets no actions: a
# multi-megabyte (or pathologically nested) file would otherwise block the server on every keystroke.
DEFAULT_MAX_DOCUMENT_CHARS = 1_000_000


class OpenDocument:
    __slots__ = (
        "__weakref__", "_snapshot", "document", "language", "language_id", "max_chars", "path", "revision", "store", "uri",
        "version",
    )

    def __init__(
        self,
        uri: str,
        version: int,
        language_id: str,
        text: str,
        max_chars: int = DEFAULT_MAX_DOCUMENT_CHARS,
        store: DocumentStore | None = None,
    ) -> None:
        self.store = store
        self.uri = uri
        self.path = to_fs_path(uri) or uri
        self.version = version
        self.revision = 0  # counts changes (a client may repeat a version number)
        self.language_id = language_id
        self.max_chars = max_chars
        self.language = language_for(path=self.path, language_id=language_id)
        self.document = SourceDocument(text, None if len(text) > max_chars else self.language)
        self._snapshot: DocumentSnapshot | None = None

    @property
    def oversized(self) -> bool:
        return len(self.document.text) > self.max_chars

    def apply(self, version: int, changes: Sequence[types.TextDocumentContentChangeEvent], encoding: str) -> None:
        for change in changes:
            rng = getattr(change, "range", None)
            document = self.document
            text = document.text
            if rng is None:  # full-document change
                start, end = 0, len(text)
            else:  # the document's own line table, kept per edit: no rescan of the whole text
                start, end = range_to_offsets(LineIndex.from_line_starts(text, document.line_starts()), rng, encoding)
            parsed = document.language is not None
            if parsed and len(text) - (end - start) + len(change.text) > self.max_chars:
                # Too large from now on: drop the tree before paying for a parse.
                self.document = SourceDocument(text[:start] + change.text + text[end:], None)
            elif rng is None:
                document.replace_all(change.text)  # reparses only what differs; keeps the line table
            else:
                document.apply_change(start, end, change.text)
        if self.document.language is None and self.language is not None and not self.oversized:
            self.document = SourceDocument(self.document.text, self.language)  # small again: parse once
        self.version = version
        self.revision += 1
        self._snapshot = None

    def snapshot(self) -> DocumentSnapshot:
        store = self.store
        settings = store.settings_of(self.uri) if store is not None else Settings()
        encoding = store.encoding if store is not None else UTF16
        snap = self._snapshot
        if snap is None:
            snap = self._snapshot = DocumentSnapshot(
                self.uri, self.path, self.version, self.language_id, self.document.snapshot(), settings, encoding
            )
        elif snap.settings is not settings or snap.encoding != encoding:  # the configuration changed
            snap = self._snapshot = replace(snap, settings=settings, encoding=encoding)
        return snap


def oversized_message(doc: OpenDocument) -> str:
    name = doc.path.replace("\\", "/").rsplit("/", 1)[-1]
    return (
        f"{name} is too large for AI actions ({len(doc.document.text):,} characters; the limit is "
        f"max_document_chars = {doc.max_chars:,}). spark-ls keeps it in sync but does not parse it "
        "or offer actions on it until it is smaller."
    )


class DocumentNotOpen(LookupError):
    def __init__(self, uri: str) -> None:
        super().__init__(f"spark-ls has no open document {uri}; open it in the editor first")
        self.uri = uri


class DocumentStore:
    def __init__(
        self,
        max_chars: int | None = None,
        *,
        settings: Settings | None = None,
        settings_for: Callable[[str], Settings] | None = None,
        encoding: str = UTF16,
    ) -> None:
        self._docs: dict[str, OpenDocument] = {}
        self.settings = settings or Settings()
        self.settings_for = settings_for  # per-folder settings (server/configuration.py)
        self.max_chars = max_chars if max_chars is not None else self.settings.max_document_chars
        self.encoding = encoding  # the negotiated position encoding
        self.warned_oversized: set[str] = set()  # URIs whose size the user was told about

    def settings_of(self, uri: str) -> Settings:
        return self.settings_for(uri) if self.settings_for is not None else self.settings

    def open(self, uri: str, version: int, language_id: str, text: str) -> OpenDocument:
        doc = OpenDocument(uri, version, language_id, text, self.max_chars, self)
        self._docs[uri] = doc
        return doc

    def change(
        self,
        uri: str,
        version: int,
        changes: Sequence[types.TextDocumentContentChangeEvent],
        encoding: str | None = None,
    ) -> OpenDocument:
        doc = self._docs.get(uri)
        if doc is None:
            raise DocumentNotOpen(uri)
        doc.apply(version, changes, encoding or self.encoding)
        return doc

    def close(self, uri: str) -> None:
        self._docs.pop(uri, None)
        self.warned_oversized.discard(uri)

    def get(self, uri: str) -> OpenDocument | None:
        return self._docs.get(uri)

    def snapshot(self, uri: str) -> DocumentSnapshot:
        doc = self._docs.get(uri)
        if doc is None:
            raise DocumentNotOpen(uri)
        return doc.snapshot()

    def others(self, uri: str) -> list[tuple[str, Snapshot]]:
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
