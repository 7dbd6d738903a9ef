"""codeAction/resolve: run the model for one listed action and attach a versioned edit."""

from __future__ import annotations

from lsprotocol import types

from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.engine import Prefetcher, run_with_progress


def register(server: SparkLanguageServer) -> None:
    server.prefetcher = Prefetcher(server)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: SparkLanguageServer, action: types.CodeAction) -> types.CodeAction:
        data = action.data if isinstance(action.data, dict) else None
        if data is None or "uri" not in data:
            return action  # not ours, or nothing to do
        edit = await run_with_progress(ls, data, action.title)
        if edit is None:
            ls.notify_user("info", f"{action.title}: the model proposed no change")
        action.edit = edit
        return action
