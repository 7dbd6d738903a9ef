"""codeAction/resolve: run the model for one listed action and attach a versioned edit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from spark_ls.server.engine import (
    check_action_data,
    refuse_if_oversized,
    run_with_progress,
)
from spark_ls.server.verification import VERIFIED_SUFFIX, outcome_of

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer


def register(server: SparkLanguageServer) -> None:
    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: SparkLanguageServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else None
        if data is None or "uri" not in data:
            return action  # not ours, or nothing to do
        checked = check_action_data(data, "codeAction/resolve")
        refuse_if_oversized(ls, checked["uri"])
        edit = await run_with_progress(ls, checked, action.title)
        if edit is None:
            ls.notify_user("info", f"{action.title}: the model proposed no change")
        elif outcome_of(edit) == "verified":  # verify_command: failing before, passing with the fix
            action.is_preferred = True
            action.title += VERIFIED_SUFFIX
        action.edit = edit
        return action
