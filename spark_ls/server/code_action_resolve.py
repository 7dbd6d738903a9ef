"""codeAction/resolve: run the model for one listed action and attach a versioned edit."""

from __future__ import annotations

from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.documents import oversized_message
from spark_ls.server.engine import (
    ActionRefused,
    Prefetcher,
    as_request_error,
    run_with_progress,
)
from spark_ls.server.verification import VERIFIED_SUFFIX, outcome_of

_DATA_TYPES = {"uri": str, "version": int, "action": str, "start_line": int, "end_line": int}


def check_action_data(data: Any, where: str) -> dict[str, Any]:
    """The action data a client sent back, if it is spark-ls's; InvalidParams otherwise."""
    if (
        isinstance(data, dict)
        and all(isinstance(data.get(k), kind) and not isinstance(data.get(k), bool) for k, kind in _DATA_TYPES.items())
        and 0 <= data["start_line"] <= data["end_line"]
    ):
        return data
    raise JsonRpcInvalidParams(f"{where}: not spark-ls action data; list the code actions again")


def refuse_if_oversized(ls: SparkLanguageServer, uri: str) -> None:
    doc = ls.documents.get(uri)
    if doc is not None and doc.oversized:
        raise as_request_error(ls, ActionRefused(oversized_message(doc)))


def register(server: SparkLanguageServer) -> None:
    server.prefetcher = Prefetcher(server)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: SparkLanguageServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else None
        if data is None or "uri" not in data:
            return action  # not ours, or nothing to do
        check_action_data(data, "codeAction/resolve")
        refuse_if_oversized(ls, data["uri"])
        edit = await run_with_progress(ls, data, action.title)
        if edit is None:
            ls.notify_user("info", f"{action.title}: the model proposed no change")
        elif outcome_of(edit) == "verified":  # verify_command: failing before, passing with the fix
            action.is_preferred = True
            action.title += VERIFIED_SUFFIX
        action.edit = edit
        return action
