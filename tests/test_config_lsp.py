"""Settings through the server, as an editor drives it: per workspace folder, problems shown,
workspace/didChangeConfiguration and didChangeWorkspaceFolders applied without a restart."""

from __future__ import annotations

import asyncio
import contextlib
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
    endpoint: Any, folders: list[Path], init_options: dict[str, Any] | None = None
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
            capabilities=client_capabilities("visual-studio-code"),
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
