"""spark-ls's own diagnostics: syntax errors from tree-sitter ERROR/MISSING nodes, debounced.

They are published so that they get a quick fix like any other server's diagnostics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from lsprotocol import types

from spark_ls.context import SyntaxProblem, syntax_errors
from spark_ls.context.picker import warm
from spark_ls.server.convert import LineIndex, column_to_units
from spark_ls.server.documents import DocumentSnapshot, DocumentStore
from spark_ls.server.features import Feature

SOURCE = "spark-ls"
CODE = "syntax-error"


def to_lsp_diagnostics(index: LineIndex, problems: Sequence[SyntaxProblem], encoding: str) -> list[types.Diagnostic]:
    result = []
    last_line = len(index.starts) - 1
    for p in problems:
        start_line, end_line = min(p.start_line, last_line), min(p.end_line, last_line)
        start_text, end_text = index.line_text(start_line), index.line_text(end_line)
        result.append(
            types.Diagnostic(
                range=types.Range(
                    start=types.Position(line=start_line, character=column_to_units(start_text, p.start_col, encoding)),
                    end=types.Position(line=end_line, character=column_to_units(end_text, p.end_col, encoding)),
                ),
                message=p.message,
                severity=types.DiagnosticSeverity.Error,
                source=SOURCE,
                code=CODE,
            )
        )
    return result


class DiagnosticsPublisher(Feature):
    """Runs once the editor has been idle for ``diagnostics_debounce`` after a change: publishes
    the syntax errors and prepares the text's analysis for the next action."""

    def __init__(self, documents: DocumentStore, publish: Callable[[types.PublishDiagnosticsParams], None]) -> None:
        self.documents = documents
        self.send = publish
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self.latest: dict[str, list[types.Diagnostic]] = {}

    def document_opened(self, uri: str) -> None:
        self.schedule(uri, immediate=True)

    def document_changed(self, uri: str) -> None:
        self.schedule(uri)

    def document_closed(self, uri: str) -> None:
        self.clear(uri)

    def shutdown(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    def schedule(self, uri: str, *, immediate: bool = False) -> None:
        handle = self._pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        delay = 0 if immediate else self.documents.settings_of(uri).diagnostics_debounce
        self._pending[uri] = loop.call_later(delay, self.publish, uri)

    def publish(self, uri: str) -> None:
        self._pending.pop(uri, None)
        doc = self.documents.get(uri)
        if doc is None:
            return
        snap = doc.snapshot()
        if snap.settings.diagnostics:
            self._publish(uri, snap)
        # The user is reading, not typing: build this text's scopes, definitions and imports
        # now, so the action they pick next does not wait for them.
        warm(snap.source)

    def _publish(self, uri: str, snap: DocumentSnapshot) -> None:
        diagnostics = to_lsp_diagnostics(snap.index(), syntax_errors(snap.source), snap.encoding)
        if diagnostics == self.latest.get(uri, []) and uri in self.latest:
            return
        self.latest[uri] = diagnostics
        self.send(types.PublishDiagnosticsParams(uri=uri, version=snap.version, diagnostics=diagnostics))

    def clear(self, uri: str) -> None:
        handle = self._pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        if self.latest.pop(uri, None):
            self.send(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
