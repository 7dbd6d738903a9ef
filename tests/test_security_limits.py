"""Size limits: oversized documents and oversized model replies.

A document above the size limit (``max_document_chars``, default 1,000,000 characters) is kept
in sync but never parsed (a pathological multi-megabyte file would otherwise block the server on
every keystroke), gets no AI actions, and the user is told once; running an action listed before
it grew is refused without a model call. When it shrinks back, everything works again.
Model replies above ``max_reply_bytes`` are abandoned (see also test_reliability_faults).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import lsp_client, open_document, wait_ready
from lsprotocol import types
from model_endpoint import ModelEndpoint
from reliability_helpers import (
    BUGGY,
    FIX_DIFF,
    FIXED,
    applied,
    cursor_in,
    fix_action,
    list_actions,
    wait_for,
)

from spark_ls.server.documents import DEFAULT_MAX_DOCUMENT_CHARS, DocumentStore

PADDING_LINE = "PADDING = 'x'  # generated\n"


def _padding(chars: int) -> str:
    return PADDING_LINE * (chars // len(PADDING_LINE) + 1)


def _change(uri: str, version: int, start: tuple[int, int], end: tuple[int, int], text: str) -> types.DidChangeTextDocumentParams:
    return types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[
            types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=start[0], character=start[1]), end=types.Position(line=end[0], character=end[1])),
                text=text,
            )
        ],
    )


def test_store_stops_parsing_above_the_limit_and_resumes_below() -> None:
    store = DocumentStore(max_chars=1000)
    uri = "file:///tmp/grow.py"
    doc = store.open(uri, 1, "python", BUGGY)
    assert not doc.oversized and store.snapshot(uri).source.tree is not None
    lines = BUGGY.count("\n")
    store.change(uri, 2, _change(uri, 2, (lines, 0), (lines, 0), _padding(2000)).content_changes, "utf-16")
    snap = store.snapshot(uri)
    assert doc.oversized and snap.source.tree is None  # never parsed at this size
    assert snap.text == BUGGY + _padding(2000)
    # Edits while oversized stay in sync, and shrinking back brings the tree back.
    store.change(uri, 3, _change(uri, 3, (lines, 0), (lines + 10_000, 0), "").content_changes, "utf-16")
    snap = store.snapshot(uri)
    assert snap.text == BUGGY and not doc.oversized and snap.source.tree is not None
    assert str(snap.source.tree.root_node) == str(DocumentStore().open("file:///x.py", 1, "python", BUGGY).snapshot().source.tree.root_node)
    # Opening above the limit: not parsed either.
    big = store.open("file:///tmp/big.py", 1, "python", BUGGY + _padding(5000))
    assert big.oversized and big.snapshot().source.tree is None


async def test_oversized_document_gets_no_actions_and_one_message(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    huge = BUGGY + _padding(DEFAULT_MAX_DOCUMENT_CHARS)
    lines = BUGGY.count("\n")
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        # Listed while small...
        open_document(client, uri, BUGGY)
        action = await fix_action(client, uri)
        # ...then a paste makes it huge: one message, no actions, and the listed action refuses.
        client.text_document_did_change(_change(uri, 2, (lines, 0), (lines, 0), huge[len(BUGGY):]))
        await wait_for(lambda: any("too large" in m.message for m in client.messages), "the size message")
        listed = await list_actions(client, uri, cursor_in(BUGGY, "    total = 0"))
        assert listed == [], [a.title for a in listed]
        # Not even for another server's diagnostic, or a selection.
        line = BUGGY.splitlines().index("    total = 0")
        selection = types.Range(start=types.Position(line=line, character=0), end=types.Position(line=line + 2, character=0))
        diagnostic = types.Diagnostic(range=selection, message="something is off", source="pyright")
        listed = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri), range=selection,
                context=types.CodeActionContext(diagnostics=[diagnostic]),
            )
        )
        assert not listed, [a.title for a in listed]
        with pytest.raises(Exception) as failure:
            await client.code_action_resolve_async(action)
        assert "too large" in str(failure.value)
        assert model_endpoint.requests == []
        assert sum("too large" in m.message for m in client.messages) == 2  # the notice + the refusal
        # More typing while oversized: no further notice.
        client.text_document_did_change(_change(uri, 3, (0, 0), (0, 0), "# more\n"))
        await list_actions(client, uri, cursor_in(BUGGY, "    total = 0"))
        assert sum("too large" in m.message for m in client.messages) == 2
        # Back under the limit: actions and edits work again, on the current version.
        client.text_document_did_change(_change(uri, 4, (0, 0), (1, 0), ""))
        client.text_document_did_change(_change(uri, 5, (lines, 0), (lines + 10**6, 0), ""))
        action = await fix_action(client, uri)
        model_endpoint.replies.append(FIX_DIFF)
        resolved = await client.code_action_resolve_async(action)
        (change,) = resolved.edit.document_changes
        assert change.text_document.version == 5 and applied(BUGGY, change) == FIXED
        # A document opened oversized is announced once too.
        big_uri = (tmp_path / "big.py").as_uri()
        open_document(client, big_uri, huge)
        await wait_for(lambda: sum("too large" in m.message for m in client.messages) == 3, "the notice for big.py")
        assert not await list_actions(client, big_uri, cursor_in(BUGGY, "    total = 0"))
