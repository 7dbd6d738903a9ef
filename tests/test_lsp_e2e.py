"""The walking skeleton, end to end: an editor-like client over stdio, spark-ls, and a model
endpoint speaking the real Responses WebSocket protocol on loopback."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from lsp_helpers import (
    apply_text_edits,
    document_edit,
    lsp_client,
    open_document,
    wait_ready,
)
from lsprotocol import types

BUGGY = (Path(__file__).resolve().parent.parent / "examples" / "buggy.py").read_text()
FIXED = BUGGY.replace("range(len(numbers) - 1)", "range(len(numbers))")
FIX_DIFF = """\
--- a/buggy.py
+++ b/buggy.py
@@ -7,3 +7,3 @@
     total = 0
-    for i in range(len(numbers) - 1):
+    for i in range(len(numbers)):
         total += numbers[i]
"""


def _cursor_in_function() -> types.Range:
    line = BUGGY.splitlines().index("    total = 0")
    return types.Range(start=types.Position(line=line, character=4), end=types.Position(line=line, character=4))


async def _actions(client, uri: str, rng: types.Range, diagnostics=(), only=None, trigger=None):
    return await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=list(diagnostics), only=only, trigger_kind=trigger),
        )
    )


@pytest.mark.asyncio
async def test_fix_bug_end_to_end(model_endpoint, tmp_path: Path) -> None:
    path = tmp_path / "buggy.py"
    path.write_text(BUGGY)
    uri = path.as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        status = await wait_ready(client)
        assert status.state == "ready"
        # The pool's sockets (2 by default) were opened and warmed at initialize, before any action.
        opened_at_start = model_endpoint.connections_opened
        assert opened_at_start == 2 and model_endpoint.warmups == opened_at_start

        open_document(client, uri, BUGGY)
        actions = await _actions(client, uri, _cursor_in_function())
        titles = [a.title for a in actions]
        assert "Fix bug in average" in titles, titles
        assert "Simplify average" in titles
        # Listing never calls the model.
        assert model_endpoint.requests == []

        fix = next(a for a in actions if a.title == "Fix bug in average")
        assert fix.kind == types.CodeActionKind.QuickFix and fix.edit is None
        model_endpoint.replies.append(FIX_DIFF)
        resolved = await client.code_action_resolve_async(fix)
        change = document_edit(resolved.edit)
        assert change.text_document.uri == uri and change.text_document.version == 1
        # Only the changed line is touched.
        assert all(e.range.start.line == e.range.end.line == 6 for e in change.edits), change.edits
        assert apply_text_edits(BUGGY, change.edits) == FIXED

        # The request carried the function, its line numbers and the task; store is off.
        body = model_endpoint.requests[0]
        assert body["model"] == "gpt-5.3-codex-spark" and body["store"] is False
        text = str(body["input"])
        assert "def average(numbers):" in text and "Find the bug" in text

        # A second resolve reuses the same warm socket.
        model_endpoint.replies.append(FIX_DIFF)
        again = await client.code_action_resolve_async(fix)
        assert apply_text_edits(BUGGY, document_edit(again.edit).edits) == FIXED
        assert model_endpoint.connections_opened == opened_at_start
        assert len(model_endpoint.requests) == 2
        assert model_endpoint.calls[0].connection_id == model_endpoint.calls[1].connection_id


@pytest.mark.asyncio
async def test_diagnostic_quick_fix_for_other_servers_diagnostic(model_endpoint, tmp_path: Path) -> None:
    path = tmp_path / "buggy.py"
    uri = path.as_uri()
    line = BUGGY.splitlines().index("    for i in range(len(numbers) - 1):")
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(line=line, character=4), end=types.Position(line=line, character=37)),
        message="loop skips the last element",
        source="pyright",
        severity=types.DiagnosticSeverity.Warning,
    )
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, BUGGY)
        actions = await _actions(client, uri, diagnostic.range, diagnostics=[diagnostic])
        quick = [a for a in actions if a.title == "Fix: loop skips the last element"]
        assert len(quick) == 1 and quick[0].is_preferred and list(quick[0].diagnostics) == [diagnostic]
        model_endpoint.replies.append(FIX_DIFF)
        resolved = await client.code_action_resolve_async(quick[0])
        assert apply_text_edits(BUGGY, document_edit(resolved.edit).edits) == FIXED
        assert "loop skips the last element" in str(model_endpoint.requests[0]["input"])


@pytest.mark.asyncio
async def test_diff_that_does_not_apply_is_refused_with_no_edit(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, BUGGY)
        actions = await _actions(client, uri, _cursor_in_function())
        fix = next(a for a in actions if a.title == "Fix bug in average")
        model_endpoint.replies.append(FIX_DIFF.replace("    total = 0", "    subtotal = 0"))
        with pytest.raises(Exception) as failure:
            await client.code_action_resolve_async(fix)
        assert "hunk 1" in str(failure.value)
        assert any("refused" in m.message for m in client.messages)


@pytest.mark.asyncio
async def test_empty_reply_means_no_change(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, BUGGY)
        actions = await _actions(client, uri, _cursor_in_function())
        fix = next(a for a in actions if a.title == "Fix bug in average")
        model_endpoint.replies.append("")
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.edit is None
        assert any("no change" in m.message for m in client.messages)


@pytest.mark.asyncio
async def test_client_without_resolve_gets_command_and_apply_edit(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                code_action_literal_support=types.ClientCodeActionLiteralOptions(
                    code_action_kind=types.ClientCodeActionKindOptions(value_set=["quickfix", "refactor"])
                )
            )
        ),
        workspace=types.WorkspaceClientCapabilities(apply_edit=True),
    )
    async with lsp_client(model_endpoint, root=tmp_path, capabilities=caps) as client:
        await wait_ready(client)
        open_document(client, uri, BUGGY)
        actions = await _actions(client, uri, _cursor_in_function())
        fix = next(a for a in actions if a.title == "Fix bug in average")
        # pygls 2.1's client parses a CodeAction that carries a command as a bare Command whose
        # `command` is the repr of the nested Command: recover what the server actually sent.
        nested = ast.literal_eval(fix.command) if isinstance(fix.command, str) else fix.command.__dict__
        assert nested["command"] == "spark.runAction"
        model_endpoint.replies.append(FIX_DIFF)
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="spark.runAction", arguments=nested["arguments"])
        )
        assert result["applied"] is True
        change = document_edit(client.applied_edits[0].edit)
        assert apply_text_edits(BUGGY, change.edits) == FIXED


@pytest.mark.asyncio
async def test_utf8_position_encoding_is_negotiated_when_offered(model_endpoint, tmp_path: Path) -> None:
    from pytest_lsp import client_capabilities

    caps = client_capabilities("visual-studio-code")
    caps.general = types.GeneralClientCapabilities(position_encodings=["utf-16", "utf-8"])
    async with lsp_client(model_endpoint, root=tmp_path, capabilities=caps) as client:
        assert client.init_result.capabilities.position_encoding == "utf-8"
