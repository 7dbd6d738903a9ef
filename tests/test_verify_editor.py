"""`verify_command` in the editor, over stdio (pytest-lsp) against the fake model endpoint: a quick
fix is tested on a private copy before it is offered; a breaking one is refused, a fixing one is
preferred and says so, the user's files are never touched, $/progress shows the run and
cancelling kills it, and a repository's own config cannot set the command."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import pytest
from check_helpers import git, make_repo
from lsp_helpers import (
    apply_text_edits,
    document_edit,
    lsp_client,
    open_document,
    wait_ready,
)
from lsprotocol import types
from verify_helpers import MATH_PY, PYTEST, TEST_MATH_PY, tree_state

from spark_ls.config import load_settings
from spark_ls.diffs import unified_diff


def _repo(tmp_path: Path, extra: dict[str, bytes] | None = None) -> Path:
    return make_repo(tmp_path / "repo", {"mathx.py": MATH_PY.encode(), "test_mathx.py": TEST_MATH_PY.encode(),
                                         **(extra or {})})


async def _fix_action(client, uri: str, name: str) -> types.CodeAction:
    line = next(i for i, text in enumerate(MATH_PY.splitlines()) if text.startswith(f"def {name}("))
    position = types.Position(line=line + 1, character=4)
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=position, end=position),
        context=types.CodeActionContext(diagnostics=[]),
    ))
    return next(a for a in actions if a.title == f"Fix bug in {name}")


async def test_fixing_quick_fix_is_verified_and_preferred(model_endpoint, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = tree_state(repo)
    uri = (repo / "mathx.py").as_uri()
    async with lsp_client(model_endpoint, root=repo, init_options={"verifyCommand": PYTEST}) as client:
        await wait_ready(client)
        open_document(client, uri, MATH_PY)
        fix = await _fix_action(client, uri, "add")
        fixed = MATH_PY.replace("return a - b", "return a + b")
        model_endpoint.replies.append(unified_diff(MATH_PY, fixed, "mathx.py"))
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.title == "Fix bug in add (verified by tests)"
        assert resolved.is_preferred is True
        assert apply_text_edits(MATH_PY, document_edit(resolved.edit).edits) == fixed
        messages = [p.message for reports in client.progress_reports.values() for p in reports
                    if getattr(p, "message", None)]
        assert any(m.startswith("running `") for m in messages), messages
    assert tree_state(repo) == before


async def test_breaking_quick_fix_is_refused(model_endpoint, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    before = tree_state(repo)
    uri = (repo / "mathx.py").as_uri()
    async with lsp_client(model_endpoint, root=repo, init_options={"verifyCommand": PYTEST}) as client:
        await wait_ready(client)
        open_document(client, uri, MATH_PY)
        fix = await _fix_action(client, uri, "mul")
        model_endpoint.replies.append(unified_diff(MATH_PY, MATH_PY.replace("a * b", "a ** b"), "mathx.py"))
        with pytest.raises(Exception) as refused:
            await client.code_action_resolve_async(fix)
        assert "refused: breaks tests" in str(refused.value)
        assert "failing (1 failed) -> failing (2 failed)" in str(refused.value)
        assert client.applied_edits == []
    assert tree_state(repo) == before


async def test_without_verify_command_the_breaking_fix_is_offered(model_endpoint, tmp_path: Path) -> None:
    # The control: the same reply is an ordinary edit when no command is configured.
    repo = _repo(tmp_path)
    uri = (repo / "mathx.py").as_uri()
    async with lsp_client(model_endpoint, root=repo) as client:
        await wait_ready(client)
        open_document(client, uri, MATH_PY)
        fix = await _fix_action(client, uri, "mul")
        model_endpoint.replies.append(unified_diff(MATH_PY, MATH_PY.replace("a * b", "a ** b"), "mathx.py"))
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.title == "Fix bug in mul" and not resolved.is_preferred
        assert "a ** b" in apply_text_edits(MATH_PY, document_edit(resolved.edit).edits)


async def test_unsaved_editor_text_is_what_gets_tested(model_endpoint, tmp_path: Path) -> None:
    # On disk `add` is already right; in the editor it is wrong. The fix is tested against the
    # editor's text (failing before, passing after), so it is verified, and the disk is untouched.
    repo = _repo(tmp_path)
    (repo / "mathx.py").write_text(MATH_PY.replace("a - b", "a + b"))
    git(repo, "commit", "-qam", "right on disk")
    before = tree_state(repo)
    uri = (repo / "mathx.py").as_uri()
    async with lsp_client(model_endpoint, root=repo, init_options={"verifyCommand": PYTEST}) as client:
        await wait_ready(client)
        open_document(client, uri, MATH_PY)
        fix = await _fix_action(client, uri, "add")
        model_endpoint.replies.append(unified_diff(MATH_PY, MATH_PY.replace("a - b", "a + b"), "mathx.py"))
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.title.endswith("(verified by tests)")
    assert tree_state(repo) == before


async def test_cancelling_the_progress_kills_the_test_run(model_endpoint, tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    pids = tmp_path / "pids"
    command = (f"{shlex.quote(sys.executable)} -c \"import os, time; open({str(pids)!r}, 'a').write(str(os.getpid()) + chr(10)); "
               "time.sleep(60)\"")
    uri = (repo / "mathx.py").as_uri()
    async with lsp_client(model_endpoint, root=repo, init_options={"verifyCommand": command}) as client:
        await wait_ready(client)
        open_document(client, uri, MATH_PY)
        fix = await _fix_action(client, uri, "add")
        model_endpoint.replies.append(unified_diff(MATH_PY, MATH_PY.replace("a - b", "a + b"), "mathx.py"))
        pending = asyncio.ensure_future(client.code_action_resolve_async(fix))
        deadline = asyncio.get_running_loop().time() + 30
        while not (pids.exists() and len(pids.read_text().split()) == 2):
            assert asyncio.get_running_loop().time() < deadline, "the verify command never started"
            await asyncio.sleep(0.05)
        (token,) = list(client.progress_reports)
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        try:
            await asyncio.wait_for(pending, 20)
        except Exception as exc:  # noqa: BLE001 - the client's error for a cancelled request
            assert not isinstance(exc, TimeoutError), "the cancel did not end the request"
        else:
            raise AssertionError("the resolve returned an edit after its progress was cancelled")
        assert client.applied_edits == []
        for pid in map(int, pids.read_text().split()):
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"verify process {pid} still running after the cancel")


async def test_repository_config_cannot_set_the_command(model_endpoint, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    hostile = f"{shlex.quote(sys.executable)} -c \"open({str(marker)!r}, 'w').write('pwned')\""
    pyproject = f"[tool.spark-ls]\nverify_command = '''{hostile}'''\nverifyCommand = '''{hostile}'''\n"
    repo = _repo(tmp_path, {"pyproject.toml": pyproject.encode()})
    assert load_settings(repo).verify_command is None
    assert load_settings(repo, {"verifyCommand": "pytest -q"}).verify_command == "pytest -q"  # the editor may
    uri = (repo / "mathx.py").as_uri()
    async with lsp_client(model_endpoint, root=repo) as client:
        await wait_ready(client)
        open_document(client, uri, MATH_PY)
        fix = await _fix_action(client, uri, "add")
        model_endpoint.replies.append(unified_diff(MATH_PY, MATH_PY.replace("a - b", "a + b"), "mathx.py"))
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.title == "Fix bug in add"
    assert not marker.exists()
