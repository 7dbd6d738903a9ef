"""The code-action catalog and the experience around it (issue 5), over stdio with the capability
sets of real clients, against a model endpoint that speaks the Responses WebSocket protocol."""

from __future__ import annotations

import asyncio
import re
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
from pytest_lsp import client_capabilities

from spark_ls.diffs import unified_diff

SOURCE = '''\
import os


def total_price(items, tax):
    result = []
    for item in items:
        result.append(item.price * (1 + tax))
    return sum(result)


class Cart:
    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
'''


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def at(line: int, character: int = 4) -> types.Range:
    return types.Range(start=types.Position(line=line, character=character), end=types.Position(line=line, character=character))


async def list_actions(client, uri, rng, *, diagnostics=(), only=None, trigger=None):
    return await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=list(diagnostics), only=only, trigger_kind=trigger),
        )
    )


# What each built-in Python action should do to total_price, as the scripted model does it.
EXPECTED_EDITS = {
    "fix-bug": ("Fix bug in total_price", lambda s: s.replace("(1 + tax)", "(1 + tax / 100)")),
    "simplify": ("Simplify total_price", lambda s: s.replace(
        "    result = []\n    for item in items:\n        result.append(item.price * (1 + tax))\n    return sum(result)\n",
        "    return sum(item.price * (1 + tax) for item in items)\n")),
    "add-types": ("Add type annotations to total_price", lambda s: s.replace(
        "def total_price(items, tax):", "def total_price(items: list, tax: float) -> float:")),
    "add-docstring": ("Add docstring to total_price", lambda s: s.replace(
        "def total_price(items, tax):\n", 'def total_price(items, tax):\n    """Total of the items\' prices with tax."""\n')),
    "loop-to-comprehension": ("Convert loops to comprehensions in total_price", lambda s: s.replace(
        "    result = []\n    for item in items:\n        result.append(item.price * (1 + tax))\n",
        "    result = [item.price * (1 + tax) for item in items]\n")),
    "inline-variable": ("Inline single-use variables in total_price", lambda s: s.replace("return sum(result)", "return sum(result) ")),
}


@pytest.mark.parametrize("client_name", ["visual-studio-code", "neovim"])
@pytest.mark.parametrize("action_id", sorted(EXPECTED_EDITS))
async def test_every_scope_action_resolves_to_its_edit(model_endpoint, tmp_path: Path, client_name: str, action_id: str) -> None:
    title, change = EXPECTED_EDITS[action_id]
    expected = change(SOURCE)
    assert expected != SOURCE
    uri = (tmp_path / "shop.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path, capabilities=client_name) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        by_title = {a.title: a for a in actions}
        assert title in by_title, list(by_title)
        model_endpoint.replies.append(unified_diff(SOURCE, expected, "shop.py"))
        resolved = await client.code_action_resolve_async(by_title[title])
        assert apply_text_edits(SOURCE, document_edit(resolved.edit).edits) == expected
        # The model was asked to do this action's task, not another's.
        instruction_words = {
            "fix-bug": "Find the bug", "simplify": "Simplify", "add-types": "type annotations",
            "add-docstring": "docstring", "loop-to-comprehension": "comprehensions", "inline-variable": "Inline",
        }[action_id]
        assert instruction_words in str(model_endpoint.requests[-1]["input"])


async def test_extract_function_from_selection(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    first, last = line_of(SOURCE, "result = []"), line_of(SOURCE, "result.append")
    selection = types.Range(start=types.Position(line=first, character=0), end=types.Position(line=last + 1, character=0))
    expected = SOURCE.replace(
        "def total_price(items, tax):\n    result = []\n    for item in items:\n        result.append(item.price * (1 + tax))\n",
        "def taxed_prices(items, tax):\n    return [item.price * (1 + tax) for item in items]\n\n\n"
        "def total_price(items, tax):\n    result = taxed_prices(items, tax)\n",
    )
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, selection)
        extract = next(a for a in actions if a.title == "Extract function from selection")
        assert extract.kind == types.CodeActionKind.RefactorExtract
        # Without a selection it is not offered.
        assert "Extract function from selection" not in [a.title for a in await list_actions(client, uri, at(first))]
        # The extracted function goes just before the enclosing one: the model may touch the
        # lines above the scope only by inserting, which the engine allows next to the scope.
        model_endpoint.replies.append(unified_diff(SOURCE, expected, "shop.py"))
        resolved = await client.code_action_resolve_async(extract)
        assert apply_text_edits(SOURCE, document_edit(resolved.edit).edits) == expected
        assert f"lines {first + 1}-{last + 1}" in str(model_endpoint.requests[-1]["input"])


async def test_only_filter_and_automatic_trigger(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    line = line_of(SOURCE, "result.append")
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(line=line, character=8), end=types.Position(line=line, character=45)),
        message="tax is a percentage",
        source="mypy",
    )
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        refactors = await list_actions(client, uri, at(line, 10), only=[types.CodeActionKind.Refactor])
        assert refactors and all(a.kind.startswith("refactor") for a in refactors)
        fixes = await list_actions(client, uri, at(line, 10), diagnostics=[diagnostic], only=[types.CodeActionKind.QuickFix])
        assert {a.title for a in fixes} == {"Fix: tax is a percentage", "Fix bug in total_price"}
        assert not await list_actions(client, uri, at(line), only=["source.organizeImports"])
        everything = await list_actions(client, uri, at(line, 10), diagnostics=[diagnostic])
        automatic = await list_actions(
            client, uri, at(line, 10), diagnostics=[diagnostic], trigger=types.CodeActionTriggerKind.Automatic
        )
        assert len(everything) > len(automatic) == 3
        assert automatic[0].title == "Fix: tax is a percentage" and automatic[0].is_preferred


async def test_fix_all_fixes_every_syntax_error_in_one_edit(model_endpoint, tmp_path: Path) -> None:
    broken = SOURCE.replace("def total_price(items, tax):", "def total_price(items, tax)").replace(
        "    def add(self, item):", "    def add(self, item)"
    )
    uri = (tmp_path / "shop.py").as_uri()

    def reply(body: dict) -> str:
        # The fixer works bottom-up on the evolving text; answer from what the request shows.
        text = str(body["input"])
        if "def add(self, item)" in text and "def add(self, item):" not in text:
            return "--- a/shop.py\n+++ b/shop.py\n@@ -14,3 +14,3 @@\n \n-    def add(self, item)\n+    def add(self, item):\n         self.items.append(item)\n"
        return "--- a/shop.py\n+++ b/shop.py\n@@ -3,3 +3,3 @@\n \n-def total_price(items, tax)\n+def total_price(items, tax):\n     result = []\n"

    model_endpoint.reply_for = reply
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, broken)
        await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        assert len(client.diagnostics[uri]) >= 2
        assert all(d.source == "spark-ls" for d in client.diagnostics[uri])
        actions = await list_actions(client, uri, at(0, 0), only=["source.fixAll"])
        assert [a.kind for a in actions] == ["source.fixAll.spark"]
        resolved = await client.code_action_resolve_async(actions[0])
        assert apply_text_edits(broken, document_edit(resolved.edit).edits) == SOURCE
        assert len(model_endpoint.requests) == 2


async def test_user_defined_action_from_workspace_config(model_endpoint, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.spark-ls.actions]]\n'
        'id = "log-calls"\n'
        'title = "Log calls to {name}"\n'
        'kind = "refactor.rewrite"\n'
        'applies_to = "scope"\n'
        'languages = ["python"]\n'
        'allow_imports = true\n'
        'instruction = "Add a logging.debug call at the start of {kind} `{name}` naming its arguments."\n'
    )
    expected = SOURCE.replace(
        "    result = []\n", "    logging.debug('total_price(%r, %r)', items, tax)\n    result = []\n"
    ).replace("import os\n", "import logging\nimport os\n")
    uri = (tmp_path / "shop.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        custom = next(a for a in actions if a.title == "Log calls to total_price")
        assert custom.kind == "refactor.rewrite"
        model_endpoint.replies.append(unified_diff(SOURCE, expected, "shop.py"))
        resolved = await client.code_action_resolve_async(custom)
        assert apply_text_edits(SOURCE, document_edit(resolved.edit).edits) == expected
        assert "logging.debug call at the start of function `total_price`" in str(model_endpoint.requests[-1]["input"])
    # Without allow_imports the same reply reaches outside the action's region: refused, no edit.
    (tmp_path / "pyproject.toml").write_text((tmp_path / "pyproject.toml").read_text().replace("allow_imports = true\n", ""))
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        custom = next(a for a in actions if a.title == "Log calls to total_price")
        model_endpoint.replies.append(unified_diff(SOURCE, expected, "shop.py"))
        with pytest.raises(Exception) as refused:
            await client.code_action_resolve_async(custom)
        assert "outside the lines this action may change" in str(refused.value)


async def test_edit_with_instruction_command(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    expected = SOURCE.replace("def add(self, item):\n        self.items.append(item)", "def add(self, item):\n        self.items.insert(0, item)")
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        model_endpoint.replies.append(unified_diff(SOURCE, expected, "shop.py"))
        line = line_of(SOURCE, "self.items.append")
        result = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="spark.editWithInstruction",
                arguments=[uri, {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}, "add items at the front"],
            )
        )
        assert result["applied"] is True
        applied = client.applied_edits[0].edit
        assert apply_text_edits(SOURCE, document_edit(applied).edits) == expected
        assert "add items at the front" in str(model_endpoint.requests[-1]["input"])
        # Progress went begin -> end for the command.
        kinds = [p.kind for reports in client.progress_reports.values() for p in reports]
        assert "begin" in kinds and "end" in kinds


async def test_cancelling_a_resolve_mid_stream_leaves_text_untouched(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    title, change = EXPECTED_EDITS["fix-bug"]
    diff = unified_diff(SOURCE, change(SOURCE), "shop.py")
    model_endpoint.tokens_per_second = 20  # slow stream: the cancel lands mid-way
    model_endpoint.chunk_chars = 4
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        fix = next(a for a in actions if a.title == title)
        model_endpoint.replies.append(diff)
        pending = asyncio.ensure_future(
            client.protocol.send_request_async(types.CODE_ACTION_RESOLVE, fix, msg_id="resolve-to-cancel")
        )
        await model_endpoint.until(lambda: model_endpoint.calls and model_endpoint.calls[0].deltas >= 2, "tokens streaming")
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="resolve-to-cancel"))
        with pytest.raises(Exception) as cancelled:
            await asyncio.wait_for(pending, 20)
        assert "cancel" in str(cancelled.value).lower()
        assert client.applied_edits == []
        # The abandoned response was not completed, and the next action works normally.
        model_endpoint.tokens_per_second = None
        model_endpoint.replies.append(diff)
        resolved = await client.code_action_resolve_async(fix)
        assert apply_text_edits(SOURCE, document_edit(resolved.edit).edits) == change(SOURCE)


async def test_prefetch_hit_and_miss(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    line = line_of(SOURCE, "result.append")
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(line=line, character=8), end=types.Position(line=line, character=45)),
        message="tax is a percentage",
        source="mypy",
    )
    expected = SOURCE.replace("(1 + tax)", "(1 + tax / 100)")
    model_endpoint.reply_for = lambda body: unified_diff(SOURCE, expected, "shop.py")
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        automatic = await list_actions(
            client, uri, at(line, 10), diagnostics=[diagnostic], trigger=types.CodeActionTriggerKind.Automatic
        )
        # Hit: the editor asked on its own; spark-ls started the preferred fix at once.
        await model_endpoint.until(lambda: model_endpoint.calls, "the prefetch reached the model")
        fix = automatic[0]
        resolved = await client.code_action_resolve_async(fix)
        assert apply_text_edits(SOURCE, document_edit(resolved.edit).edits) == expected
        assert len(model_endpoint.requests) == 1

        # Miss: a change invalidates the prefetch; the resolve computes afresh on the new text.
        await list_actions(client, uri, at(line, 10), diagnostics=[diagnostic], trigger=types.CodeActionTriggerKind.Automatic)
        await model_endpoint.until(lambda: len(model_endpoint.calls) >= 2, "the second prefetch reached the model")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangePartial(range=at(0, 0), text="# header\n")],
            )
        )
        resolved = await client.code_action_resolve_async(fix)
        assert len(model_endpoint.requests) == 3
        change = document_edit(resolved.edit)
        assert change.text_document.version == 2
        assert apply_text_edits("# header\n" + SOURCE, change.edits) == "# header\n" + expected


async def test_stale_version_is_placed_on_current_text_or_refused(model_endpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    title, change = EXPECTED_EDITS["fix-bug"]
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        fix = next(a for a in await list_actions(client, uri, at(line_of(SOURCE, "result = []"))) if a.title == title)
        # The user adds lines above the function after the menu was shown.
        prefix = "import sys\nimport json\n"
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangePartial(range=at(0, 0), text=prefix)],
            )
        )
        # The model answers against the text it was shown (the current one): placed and versioned.
        current = prefix + SOURCE
        model_endpoint.replies.append(unified_diff(current, change(current), "shop.py"))
        resolved = await client.code_action_resolve_async(fix)
        edit = document_edit(resolved.edit)
        assert edit.text_document.version == 2
        assert apply_text_edits(current, edit.edits) == change(current)
        assert "def total_price" in str(model_endpoint.requests[-1]["input"])

        # The function is deleted: resolving the old action is refused with a reason.
        start, end = line_of(current, "def total_price"), line_of(current, "return sum(result)")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=types.Position(line=start, character=0), end=types.Position(line=end + 1, character=0)),
                        text="",
                    )
                ],
            )
        )
        before = len(model_endpoint.requests)
        with pytest.raises(Exception) as refused:
            await client.code_action_resolve_async(fix)
        assert "total_price" in str(refused.value) and "no longer" in str(refused.value)
        assert len(model_endpoint.requests) == before


async def test_llm_tag_when_client_supports_it(model_endpoint, tmp_path: Path) -> None:
    caps = client_capabilities("visual-studio-code")
    caps.text_document.code_action.tag_support = types.CodeActionTagOptions(value_set=[types.CodeActionTag.LlmGenerated])
    uri = (tmp_path / "shop.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path, capabilities=caps) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        assert actions and all(list(a.tags or []) == [types.CodeActionTag.LlmGenerated] for a in actions)
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        assert actions and all(a.tags is None for a in actions)


async def test_actions_disabled_with_reason_when_no_model(tmp_path: Path) -> None:
    uri = (tmp_path / "shop.py").as_uri()
    missing = tmp_path / "no-such-model.gguf"
    async with lsp_client(
        None, root=tmp_path, init_options={"transport": "local", "local_model_path": str(missing)}
    ) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        actions = await list_actions(client, uri, at(line_of(SOURCE, "result = []")))
        assert actions, "actions are still listed, greyed out with the reason"
        assert all(a.disabled is not None and re.search("model", a.disabled.reason) for a in actions)
        assert any("unavailable" in m.message for m in client.messages)
