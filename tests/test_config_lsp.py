"""Settings through the server, as an editor drives it: per workspace folder, problems shown,
workspace/didChangeConfiguration and didChangeWorkspaceFolders applied without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import open_document, server_env
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

BROKEN = "def f(x):\n    return (x +\n"  # a syntax error: diagnostics + the fix-diagnostic action


def _action_toml(action_id: str, title: str) -> str:
    return f'[[actions]]\nid = "{action_id}"\ntitle = "{title}"\ninstruction = "do {action_id}"\n'


@contextlib.asynccontextmanager
async def _client(
    endpoint: Any, folders: list[Path], init_options: dict[str, Any] | None = None,
    capabilities: types.ClientCapabilities | None = None,
) -> AsyncIterator[LanguageClient]:
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "spark_ls", "serve"], server_env=server_env(endpoint)
    )
    client: LanguageClient = await config.start()
    statuses: list[Any] = []
    client.statuses = statuses  # type: ignore[attr-defined]

    @client.feature("spark/status")
    def status(params: Any) -> None:
        statuses.append(params)

    await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities or client_capabilities("visual-studio-code"),
            root_uri=folders[0].as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in folders],
            initialization_options=init_options,
        )
    )
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.shutdown_session()
        with contextlib.suppress(Exception):
            await client.stop()


async def _until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return value


async def _titles(client: LanguageClient, uri: str) -> list[str]:
    cursor = types.Position(line=0, character=4)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(start=cursor, end=cursor),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    return [a.title for a in actions or []]


def _warnings(client: LanguageClient) -> list[str]:
    return [m.message for m in client.messages if m.type == types.MessageType.Warning]


@pytest.mark.asyncio
async def test_each_folder_has_its_own_settings(model_endpoint, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
    (one / "spark-ls.toml").write_text("diagnostics = false\n" + _action_toml("shout-one", "Shout one in {name}"))
    (two / "pyproject.toml").write_text(
        "[tool.spark-ls]\ndiagnostics-debounce = 0.01\n"
        '[[tool.spark-ls.actions]]\nid = "shout-two"\ntitle = "Shout two in {name}"\ninstruction = "x"\n'
    )
    async with _client(model_endpoint, [one, two]) as client:
        uri_one, uri_two = (one / "a.py").as_uri(), (two / "b.py").as_uri()
        open_document(client, uri_one, BROKEN)
        open_document(client, uri_two, BROKEN)
        await _until(lambda: client.diagnostics.get(uri_two), "diagnostics in folder two")
        await asyncio.sleep(0.5)  # folder one's default debounce (0.3 s) has passed
        assert uri_one not in client.diagnostics  # diagnostics = false in folder one only

        titles_one, titles_two = await _titles(client, uri_one), await _titles(client, uri_two)
        assert "Shout one in f" in titles_one and not any(t.startswith("Shout two") for t in titles_one)
        assert "Shout two in f" in titles_two and not any(t.startswith("Shout one") for t in titles_two)

        # A folder added later is read too; a removed one no longer applies.
        three = tmp_path / "three"
        three.mkdir()
        (three / "spark-ls.toml").write_text(_action_toml("shout-three", "Shout three in {name}"))
        client.workspace_did_change_workspace_folders(
            types.DidChangeWorkspaceFoldersParams(
                event=types.WorkspaceFoldersChangeEvent(
                    added=[types.WorkspaceFolder(uri=three.as_uri(), name="three")],
                    removed=[types.WorkspaceFolder(uri=one.as_uri(), name="one")],
                )
            )
        )
        uri_three = (three / "c.py").as_uri()
        open_document(client, uri_three, BROKEN)
        assert "Shout three in f" in await _titles(client, uri_three)
        assert not any(t.startswith("Shout one") for t in await _titles(client, uri_one))


@pytest.mark.asyncio
async def test_bad_and_unknown_settings_are_reported_and_the_rest_apply(model_endpoint, tmp_path: Path) -> None:
    (tmp_path / "spark-ls.toml").write_text('pool_size = 0\nbase_url = "https://elsewhere.example/v1"\n'
                                            + _action_toml("mine", "Mine in {name}"))
    options = {"diagnosticsDebounce": 0.01, "contextBudget": "lots", "diagnosticsDebunce": 1}
    async with _client(model_endpoint, [tmp_path], options) as client:
        status = await _until(lambda: client.statuses, "the session status")
        assert status[0].state == "ready"  # one bad value no longer disables everything
        warning = " ".join(_warnings(client))
        assert "setting 'pool_size': must be at least 1, not 0; using 2 (the default)" in warning
        assert "ignoring base_url" in warning
        assert "setting 'contextBudget': expected a whole number, got 'lots'" in warning
        assert "unknown setting 'diagnosticsDebunce' (did you mean 'diagnosticsDebounce'?)" in warning
        uri = (tmp_path / "a.py").as_uri()
        open_document(client, uri, BROKEN)
        assert "Mine in f" in await _titles(client, uri)
        await _until(lambda: client.diagnostics.get(uri), "diagnostics (debounce 0.01 s from the editor)", timeout=5)


@pytest.mark.asyncio
async def test_did_change_configuration_applies_without_a_restart(model_endpoint, tmp_path: Path) -> None:
    async with _client(model_endpoint, [tmp_path], {"diagnostics": False}) as client:
        await _until(lambda: client.statuses, "the session status")
        uri = (tmp_path / "a.py").as_uri()
        open_document(client, uri, BROKEN)
        await asyncio.sleep(0.5)
        assert uri not in client.diagnostics
        assert not any(t.startswith("Mine") for t in await _titles(client, uri))

        # A folder setting: applies to the next request; no new model session.
        connections = model_endpoint.connections_opened
        (tmp_path / "spark-ls.toml").write_text(_action_toml("mine", "Mine in {name}"))  # re-read too
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"spark-ls": {"diagnostics": True, "diagnosticsDebounce": 0.01}})
        )
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=BROKEN + "\n")],
            )
        )
        await _until(lambda: client.diagnostics.get(uri), "diagnostics once turned on", timeout=5)
        assert "Mine in f" in await _titles(client, uri)
        assert model_endpoint.connections_opened == connections
        assert len(client.statuses) == 1

        # A session setting: the model session is replaced and reports the new model.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"model": "gpt-5-mini", "poolSize": 1, "typo": True})
        )
        status = await _until(lambda: client.statuses[1:], "the new session's status")
        assert status[0].state == "ready" and status[0].model == "gpt-5-mini"
        assert any("unknown setting 'typo'" in w for w in _warnings(client))
        # The payload replaced the previous push: diagnostics are back to the initial False.
        client.diagnostics.clear()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=BROKEN + "\n\n")],
            )
        )
        await asyncio.sleep(0.6)
        assert uri not in client.diagnostics


@pytest.mark.asyncio
async def test_inline_completion_follows_the_folder_and_live_changes(model_endpoint, tmp_path: Path) -> None:
    from inline_helpers import caps, items_of, position_of, request

    off, on = tmp_path / "off", tmp_path / "on"
    for folder in (off, on):
        folder.mkdir()
    (off / "spark-ls.toml").write_text("inline_completion = false\n")
    source, pos = position_of("def add(a, b):\n    return |\n")
    async with _client(model_endpoint, [off, on], capabilities=caps()) as client:
        await _until(lambda: client.statuses, "the session status")
        uri_off, uri_on = (off / "m.py").as_uri(), (on / "m.py").as_uri()
        open_document(client, uri_off, source)
        open_document(client, uri_on, source)
        assert items_of(await client.text_document_inline_completion_async(request(pos, uri_off))) == []
        model_endpoint.replies.append("a + b")
        items = items_of(await client.text_document_inline_completion_async(request(pos, uri_on)))
        assert [i.insert_text for i in items] == ["a + b"]

        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"inlineCompletion": False}))
        source2, pos2 = position_of("def sub(a, b):\n    return |\n")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri_on, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=source2)],
            )
        )
        calls = len(model_endpoint.calls)
        assert items_of(await client.text_document_inline_completion_async(request(pos2, uri_on))) == []
        assert len(model_endpoint.calls) == calls


@pytest.mark.asyncio
async def test_serve_debug_log_file_shows_the_prompt_sent_without_the_key(model_endpoint, tmp_path: Path) -> None:
    from conftest import TEST_API_KEY
    from lsp_helpers import lsp_client

    log_file = tmp_path / "server.log"
    source = "def add(a, b):\n    return a - b  # token sk-proj-abcdefgh12345678\n"
    async with lsp_client(model_endpoint, root=tmp_path,
                          server_args=["--log-level", "DEBUG", "--log-file", str(log_file)]) as client:
        await _until(lambda: client.statuses, "the session status")  # type: ignore[attr-defined]
        uri = (tmp_path / "m.py").as_uri()
        open_document(client, uri, source)
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(start=types.Position(line=1, character=4), end=types.Position(line=1, character=4)),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        fix = next(a for a in actions or [] if a.title == "Fix bug in add")
        model_endpoint.replies.append("")
        await client.code_action_resolve_async(fix)
    log = log_file.read_text()
    prompt = log.split("spark_ls.model.session DEBUG prompt sent to gpt-5.3-codex-spark:\n", 1)[1]
    prompt = re.split(r"\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ", prompt, maxsplit=1)[0]  # up to the next record
    assert prompt.startswith("--- instructions\n") and "def add(a, b):" in prompt
    assert "abcdefgh12345678" not in prompt and "# token ***" in prompt  # key-like text masked
    assert TEST_API_KEY not in log
