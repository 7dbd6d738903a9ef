"""Drive `spark-ls serve` over stdio the way an editor does (pytest-lsp's LanguageClient)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from conftest import TEST_API_KEY
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

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


async def wait_for(predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``predicate`` (bounded) for state that arrives over LSP; fail naming ``what``.

    The one polling helper of the test suite. The fake model endpoint's own state has events:
    ``await endpoint.until(predicate, what)`` (tests/model_endpoint.py)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_ready(client: LanguageClient, timeout: float = 30.0) -> Any:
    """Wait for the server's first `spark/status` (sent once the model session is warm)."""
    await wait_for(lambda: client.statuses, "spark-ls's model session status", timeout)  # type: ignore[attr-defined]
    return client.statuses[0]  # type: ignore[attr-defined]


def open_document(client: LanguageClient, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)
        )
    )


def apply_text_edits(text: str, edits: list[types.TextEdit], encoding: str = "utf-16") -> str:
    from spark_ls.server.convert import LineIndex
    from spark_ls.server.convert import apply_text_edits as apply

    return apply(text, LineIndex(text), edits, encoding)


def document_edit(edit: types.WorkspaceEdit) -> types.TextDocumentEdit:
    assert edit is not None and edit.document_changes, f"expected a versioned document edit, got {edit!r}"
    assert len(edit.document_changes) == 1
    change = edit.document_changes[0]
    assert isinstance(change, types.TextDocumentEdit)
    return change
