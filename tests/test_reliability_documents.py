"""Hostile text sync, in process: random didOpen/didChange sequences against a reference model.

The reference below is written from the LSP specification, independently of spark-ls:
lines end at ``\\n``, ``\\r\\n`` or ``\\r`` (and nothing else: not ``\\u2028``, not form feed);
``character`` counts units of the negotiated encoding; a position past the end of a line means
the end of that line; a line past the last line means the end of the document; a position that
falls inside a character (half a surrogate pair, the middle of a UTF-8 sequence) means the start
of that character. Changes in one notification apply in order.

The properties: after every notification the server's text and version equal the reference's;
no exception escapes; the incrementally maintained tree equals a fresh parse of the final text;
and edits the server computes, converted to LSP TextEdits, turn the old text into the new one when
applied the way a client applies them.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_reference import PIECES, line_units, ref_apply, ref_lines, ref_offset, unit_len  # noqa: F401
from lsprotocol import types

from spark_ls.context.document import SourceDocument
from spark_ls.context.languages import language_for
from spark_ls.diffs import minimal_edits
from spark_ls.server.convert import LineIndex, edits_to_text_edits, position_at
from spark_ls.server.documents import DocumentNotOpen, DocumentStore

ENCODINGS = ("utf-16", "utf-8", "utf-32")

text_strategy = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


# ---------------------------------------------------------------------- strategies


@st.composite
def position(draw: st.DrawFn, text: str, encoding: str) -> tuple[int, int]:
    widths = line_units(text, encoding)
    line = draw(st.integers(0, len(widths) + 1))  # sometimes past the last line
    limit = widths[line] if line < len(widths) else 0
    character = draw(
        st.one_of(
            st.integers(0, limit),  # on the line (possibly inside a multi-unit character)
            st.integers(limit, limit + 5),  # past the line end: clients do send these
        )
    )
    return line, character


@st.composite
def change(draw: st.DrawFn, text: str, encoding: str) -> tuple[int, int, int, int, str] | str:
    if draw(st.integers(0, 9)) == 0:
        return draw(text_strategy)  # a full-document change
    a = draw(position(text, encoding))
    b = draw(position(text, encoding))
    (sl, sc), (el, ec) = sorted([a, b])
    return sl, sc, el, ec, draw(text_strategy)


def to_lsp(change: tuple[int, int, int, int, str] | str) -> types.TextDocumentContentChangeEvent:
    if isinstance(change, str):
        return types.TextDocumentContentChangeWholeDocument(text=change)
    sl, sc, el, ec, new = change
    return types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec)),
        text=new,
    )


def tree_sexp(text: str) -> str:
    fresh = SourceDocument(text, language_for(language_id="python"))
    return str(fresh.tree.root_node)


# ---------------------------------------------------------------------- properties


@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), initial=text_strategy)
def test_text_sync_matches_the_lsp_reference(encoding: str, data: st.DataObject, initial: str) -> None:
    store = DocumentStore()
    uri = "file:///tmp/hostile.py"
    store.open(uri, 1, "python", initial)
    text = initial
    for version in range(2, 2 + data.draw(st.integers(1, 8), label="notifications")):
        batch: list = []
        expected = text
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            step = data.draw(change(expected, encoding))
            batch.append(step)
            expected = ref_apply(expected, [step], encoding)
        store.change(uri, version, [to_lsp(c) for c in batch], encoding)
        text = expected
        snap = store.snapshot(uri)
        assert snap.text == text, (batch, encoding)
        assert snap.version == version
        # The engine's own line view agrees with the LSP line structure.
        assert [line.rstrip("\r\n") for line in snap.source.lines] == [
            line.content for line in ref_lines(text)
        ][: len(snap.source.lines)]
    snap = store.snapshot(uri)
    assert str(snap.source.tree.root_node) == tree_sexp(text), "incremental tree differs from a fresh parse"


@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=150, deadline=None)
@given(old=text_strategy, new=text_strategy)
def test_server_edits_land_where_a_client_applies_them(encoding: str, old: str, new: str) -> None:
    """Engine edits -> LSP TextEdits (server side) -> applied by the reference client == new text."""
    edits = minimal_edits(old, new)
    text_edits = edits_to_text_edits(LineIndex(old), edits, encoding)
    spans = sorted(
        (
            (
                ref_offset(old, e.range.start.line, e.range.start.character, encoding),
                ref_offset(old, e.range.end.line, e.range.end.character, encoding),
                e.new_text,
            )
            for e in text_edits
        ),
        reverse=True,
    )
    result = old
    for start, end, text in spans:
        result = result[:start] + text + result[end:]
    assert result == new


@pytest.mark.parametrize("encoding", ENCODINGS)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), text=text_strategy)
def test_positions_round_trip(encoding: str, data: st.DataObject, text: str) -> None:
    """offset -> position (server) -> offset (reference) is the identity on character boundaries
    that are not inside a CRLF pair."""
    offset = data.draw(st.integers(0, len(text)))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        offset -= 1
    pos = position_at(LineIndex(text), offset, encoding)
    assert ref_offset(text, pos.line, pos.character, encoding) == offset


def test_huge_line_stays_in_sync() -> None:
    """A 400 000-character single line (minified code) with surrogate pairs, edited at both ends,
    in the middle and past its end, in UTF-16. (Plain text: this is about position conversion,
    not parsing; oversized parsed documents are covered by the size guard tests.)"""
    line = ("x = '😀é' + " * 40_000)[:400_000]
    store = DocumentStore()
    uri = "file:///tmp/minified.txt"
    store.open(uri, 1, "plaintext", line)
    text = line
    units = line_units(text, "utf-16")[0]
    steps = [
        (0, 0, 0, 0, "# head\n"),
        (1, units // 2, 1, units // 2 + 7, "Z\r\n"),
        (1, units // 2 + 1, 1, units // 2 + 1, "|"),  # inside a surrogate pair: before it
        (2, 10**9, 2, 10**9, "\n# tail"),
        (5, 3, 9, 0, "past the end"),
    ]
    for version, step in enumerate(steps, start=2):
        store.change(uri, version, [to_lsp(step)], "utf-16")
        text = ref_apply(text, [step], "utf-16")
        assert store.snapshot(uri).text == text


def test_empty_document_and_changes_to_nothing() -> None:
    store = DocumentStore()
    uri = "file:///tmp/empty.py"
    store.open(uri, 1, "python", "")
    for version, step in enumerate([(0, 0, 0, 0, ""), (3, 3, 7, 7, "x"), (0, 0, 0, 5, ""), ""], start=2):
        store.change(uri, version, [to_lsp(step)], "utf-16")
    assert store.snapshot(uri).text == ""


def test_changes_and_requests_for_unknown_or_closed_documents_are_refused_cleanly() -> None:
    store = DocumentStore()
    uri = "file:///tmp/gone.py"
    with pytest.raises(DocumentNotOpen, match="open it in the editor"):
        store.change(uri, 2, [to_lsp((0, 0, 0, 0, "x"))], "utf-16")
    with pytest.raises(DocumentNotOpen):
        store.snapshot(uri)
    store.open(uri, 1, "python", "x = 1\n")
    store.close(uri)
    store.close(uri)  # closing twice is harmless
    assert store.get(uri) is None
    with pytest.raises(DocumentNotOpen):
        store.snapshot(uri)
    # Re-opening starts from the new text, not the old one.
    store.open(uri, 7, "python", "y = 2\n")
    assert store.snapshot(uri).text == "y = 2\n" and store.snapshot(uri).version == 7


async def test_notifications_leave_no_per_message_state_in_the_server() -> None:
    """pygls keeps the future of every generator-handled notification forever; spark-ls's text
    sync must not go through that path (it leaked about 1 KiB per keystroke in the soak bench)."""
    import json

    from spark_ls.server.main import create_server

    server = create_server()
    protocol = server.protocol
    sent: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(data)

        def close(self) -> None:
            pass

    protocol.set_writer(Writer())

    def feed(message: dict) -> None:
        protocol.handle_message(json.loads(json.dumps(message), object_hook=protocol.structure_message))

    uri = "file:///tmp/leak.py"
    feed({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}})
    for version in range(2, 502):
        feed({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 5}},
                                "text": str(version % 10)}]}})
    feed({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    assert server.documents.get(uri) is None
    assert len(protocol._request_futures) < 5, len(protocol._request_futures)
    # ...and the text went through spark-ls's store while it was open.
    feed({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "y = 2\n"}}})
    assert server.documents.snapshot(uri).text == "y = 2\n"
