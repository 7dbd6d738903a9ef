"""workspace/executeCommand: run an action for clients without resolve support, or with a
free-text instruction, then ask the client to apply the edit (workspace/applyEdit).

pygls does not cancel executeCommand on $/cancelRequest, so a run is cancelled through its
progress (window/workDoneProgress/cancel) or when the document changes under it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from spark_ls.context import enclosing_scope
from spark_ls.server.convert import range_to_lines
from spark_ls.server.documents import DocumentNotOpen
from spark_ls.server.engine import (
    INSTRUCTION_ACTION,
    ActionData,
    action_data,
    as_request_error,
    check_action_data,
    refuse_if_oversized,
    run_with_progress,
)

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server")

RUN_ACTION = "spark.runAction"
EDIT_WITH_INSTRUCTION = "spark.editWithInstruction"


async def _apply(ls: SparkLanguageServer, data: ActionData, title: str) -> dict[str, Any]:
    refuse_if_oversized(ls, data["uri"])
    edit = await run_with_progress(ls, data, title)
    if edit is None:
        ls.notify_user("info", f"{title}: the model proposed no change")
        return {"applied": False, "reason": "no change"}
    result = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label=f"spark-ls: {title}"))
    if not result.applied:
        reason = result.failure_reason or "the editor did not apply the edit (the document probably changed)"
        ls.notify_user("warning", f"{title}: {reason}")
    return {"applied": bool(result.applied), "reason": result.failure_reason}


def _range_from(arg: Any) -> types.Range:
    if isinstance(arg, types.Range):
        return arg
    return types.Range(
        start=types.Position(line=int(arg["start"]["line"]), character=int(arg["start"]["character"])),
        end=types.Position(line=int(arg["end"]["line"]), character=int(arg["end"]["character"])),
    )


def register(server: SparkLanguageServer) -> None:
    # The server comes from the closure, not an `ls` parameter: pygls resolves a command's type
    # hints at run time to convert its arguments, and the server type is imported for annotations only.
    ls = server

    @server.command(RUN_ACTION)
    async def run_action(*args: Any) -> dict[str, Any]:
        if not args:
            raise JsonRpcInvalidParams(f"{RUN_ACTION} takes one argument: the action data from textDocument/codeAction")
        data = check_action_data(args[0], RUN_ACTION)
        return await _apply(ls, data, str(data.get("action")))

    @server.command(EDIT_WITH_INSTRUCTION)
    async def edit_with_instruction(*args: Any) -> dict[str, Any]:
        try:
            if len(args) < 3 or not isinstance(args[0], str):
                raise TypeError("wrong arguments")
            uri, rng, instruction = args[0], _range_from(args[1]), str(args[2]).strip()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            raise JsonRpcInvalidParams(f"{EDIT_WITH_INSTRUCTION} takes [uri, range, instruction]") from None
        if not instruction:
            return {"applied": False, "reason": "empty instruction"}
        try:
            snap = ls.documents.snapshot(uri)
        except DocumentNotOpen as exc:
            raise as_request_error(ls, exc) from None
        start_line, end_line = range_to_lines(rng)
        scope = enclosing_scope(snap.source, start_line, end_line)
        data = action_data(snap, INSTRUCTION_ACTION, start_line, end_line, scope=scope, instruction=instruction)
        return await _apply(ls, data, f"Edit: {instruction[:60]}")
