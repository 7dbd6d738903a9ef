"""Shared pieces for the reliability, security and load tests (no tests in this module).

A small Python document with a known bug, the minimal diff that fixes it, and helpers to list
and resolve the "Fix bug in average" action over stdio exactly as an editor does.
"""

from __future__ import annotations

from typing import Any

from lsp_helpers import apply_text_edits, document_edit, open_document, wait_for  # noqa: F401 (re-exported)
from lsprotocol import types

BUGGY = '''\
"""Statistics helpers."""


def average(numbers):
    """Return the arithmetic mean of a non-empty list of numbers."""
    total = 0
    for i in range(len(numbers) - 1):
        total += numbers[i]
    return total / len(numbers)


def spread(numbers):
    return max(numbers) - min(numbers)
'''
# An API key the security tests look for in every log, message, file and request (it must appear
# only in the Authorization header sent to the endpoint).
LEAK_CHECK_KEY = "sk-proj-LEAKCHECK-7f3a9c2e5b1d4a6f8e0c9b7a5d3f1e2c"

FIXED = BUGGY.replace("range(len(numbers) - 1)", "range(len(numbers))")


def fix_diff(path: str = "buggy.py") -> str:
    return f"""\
--- a/{path}
+++ b/{path}
@@ -6,4 +6,4 @@
     total = 0
-    for i in range(len(numbers) - 1):
+    for i in range(len(numbers)):
         total += numbers[i]
     return total / len(numbers)
"""


FIX_DIFF = fix_diff()


def cursor_in(text: str, needle: str) -> types.Range:
    line = text.splitlines().index(needle)
    pos = types.Position(line=line, character=4)
    return types.Range(start=pos, end=pos)


async def list_actions(client: Any, uri: str, rng: types.Range, *, only: list[str] | None = None) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=rng,
            context=types.CodeActionContext(diagnostics=[], only=only),
        )
    )
    return list(result or [])


async def fix_action(client: Any, uri: str, text: str = BUGGY, name: str = "average") -> types.CodeAction:
    actions = await list_actions(client, uri, cursor_in(text, "    total = 0"))
    found = [a for a in actions if a.title == f"Fix bug in {name}"]
    assert found, [a.title for a in actions]
    return found[0]


async def open_buggy(client: Any, uri: str, text: str = BUGGY) -> types.CodeAction:
    open_document(client, uri, text)
    return await fix_action(client, uri, text)


async def resolve_edit(client: Any, action: types.CodeAction) -> types.TextDocumentEdit:
    resolved = await client.code_action_resolve_async(action)
    return document_edit(resolved.edit)


def applied(text: str, change: types.TextDocumentEdit, encoding: str = "utf-16") -> str:
    return apply_text_edits(text, change.edits, encoding)


def shown(client: Any, *, since: int = 0) -> list[types.ShowMessageParams]:
    return list(client.messages[since:])


def logged_server_command(log_path: str, *serve_args: str, log_level: str = "DEBUG") -> list[str]:
    """`spark-ls --log-level LEVEL serve ARGS` with its whole stderr appended to ``log_path``."""
    import sys

    return [
        "/bin/sh", "-c", 'log="$1"; shift; exec "$@" 2>>"$log"', "sh", log_path,
        sys.executable, "-m", "spark_ls", "--log-level", log_level, "serve", *serve_args,
    ]


async def start_client(
    command: list[str],
    env: dict[str, str],
    *,
    capabilities: str | types.ClientCapabilities = "visual-studio-code",
    init_options: dict[str, Any] | None = None,
    root: Any = None,
) -> Any:
    """Like lsp_helpers.lsp_client, for an arbitrary server command (the caller stops it)."""
    from pytest_lsp import ClientServerConfig, client_capabilities

    client = await ClientServerConfig(server_command=command, server_env=env).start()
    caps = client_capabilities(capabilities) if isinstance(capabilities, str) else capabilities
    client.applied_edits = []  # type: ignore[attr-defined]
    client.statuses = []  # type: ignore[attr-defined]

    @client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        client.applied_edits.append(params)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    @client.feature("spark/status")
    def status(params: Any) -> None:
        client.statuses.append(params)  # type: ignore[attr-defined]

    client.init_result = await client.initialize_session(  # type: ignore[attr-defined]
        types.InitializeParams(
            capabilities=caps,
            root_uri=root.as_uri() if root else None,
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)] if root else None,
            initialization_options=init_options,
        )
    )
    return client


async def stop_client(client: Any) -> None:
    import contextlib

    with contextlib.suppress(Exception):
        await client.shutdown_session()
    with contextlib.suppress(Exception):
        await client.stop()
