"""Drive `spark-ls serve` over stdio the way an editor does (pytest-lsp's LanguageClient)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, AsyncIterator

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from conftest import TEST_API_KEY  # noqa: E402  (tests/ is on sys.path via conftest)

REPO = Path(__file__).resolve().parent.parent


def server_env(endpoint: Any | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
    if endpoint is not None:
        env["OPENAI_BASE_URL"] = endpoint.base_url
        env["OPENAI_API_KEY"] = TEST_API_KEY
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def lsp_client(
    endpoint: Any | None,
    *,
    capabilities: str | types.ClientCapabilities = "visual-studio-code",
    init_options: dict[str, Any] | None = None,
    root: Path | None = None,
    env: dict[str, str] | None = None,
    server_args: list[str] | None = None,
) -> AsyncIterator[LanguageClient]:
    """A started, initialized client connected to a fresh `spark-ls serve` subprocess."""
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "spark_ls", "serve", *(server_args or [])],
        server_env=env if env is not None else server_env(endpoint),
    )
    client: LanguageClient = await config.start()
    caps = client_capabilities(capabilities) if isinstance(capabilities, str) else capabilities
    applied: list[types.ApplyWorkspaceEditParams] = []
    client.applied_edits = applied  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    statuses: list[Any] = []
    client.statuses = statuses  # type: ignore[attr-defined]

    @client.feature("spark/status")
    def status(params: Any) -> None:
        statuses.append(params)

    client.init_result = await client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=caps,
            root_uri=root.as_uri() if root else None,
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root else None,
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


async def wait_ready(client: LanguageClient, timeout: float = 30.0) -> Any:
    """Wait for the server's first `spark/status` (sent once the model session is warm)."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while not client.statuses:  # type: ignore[attr-defined]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("spark-ls never reported its model session status")
        await asyncio.sleep(0.02)
    return client.statuses[0]  # type: ignore[attr-defined]


def open_document(client: LanguageClient, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)
        )
    )


def apply_text_edits(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    from spark_ls.server.convert import LineIndex, apply_text_edits as apply

    return apply(text, LineIndex(text), edits, encoding)


def document_edit(edit: types.WorkspaceEdit) -> types.TextDocumentEdit:
    assert edit is not None and edit.document_changes, f"expected a versioned document edit, got {edit!r}"
    assert len(edit.document_changes) == 1
    change = edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit)
    return change
