"""spark-ls's own diagnostics: syntax errors from tree-sitter ERROR/MISSING nodes, debounced.

They are published so that they get a quick fix like any other server's diagnostics.
"""

from __future__ import annotations

import asyncio

from lsprotocol import types

from spark_ls.context.picker import syntax_errors, warm
from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.convert import LineIndex, column_to_units

SOURCE = "spark-ls"
CODE = "syntax-error"


def to_lsp_diagnostics(index: LineIndex, problems: list, encoding: str) -> list[types.Diagnostic]:
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


class DiagnosticsPublisher:
    """Runs once the editor has been idle for ``diagnostics_debounce`` after a change: publishes
    the syntax errors and prepares the text's analysis for the next action."""

    def __init__(self, server: SparkLanguageServer) -> None:
        self.server = server
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self.latest: dict[str, list[types.Diagnostic]] = {}

    def schedule(self, uri: str, *, immediate: bool = False) -> None:
        handle = self._pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        delay = 0 if immediate else self.server.settings_for(uri).diagnostics_debounce
        self._pending[uri] = loop.call_later(delay, self.publish, uri)

    def publish(self, uri: str) -> None:
        self._pending.pop(uri, None)
        doc = self.server.documents.get(uri)
        if doc is None:
            return
        snap = doc.snapshot()
        if self.server.settings_for(uri).diagnostics:
            self._publish(uri, snap)
        # The user is reading, not typing: build this text's scopes, definitions and imports
        # now, so the action they pick next does not wait for them.
        warm(snap.source)

    def _publish(self, uri: str, snap: object) -> None:
        diagnostics = to_lsp_diagnostics(snap.index(), syntax_errors(snap.source), self.server.encoding)
        if diagnostics == self.latest.get(uri, []) and uri in self.latest:
            return
        self.latest[uri] = diagnostics
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=snap.version, diagnostics=diagnostics)
        )

    def clear(self, uri: str) -> None:
        handle = self._pending.pop(uri, None)
        if handle is not None:
            handle.cancel()
        if self.latest.pop(uri, None):
            self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def register(server: SparkLanguageServer) -> None:
    server.diagnostics = DiagnosticsPublisher(server)
