"""initialize / shutdown (exit is handled by the transport, server/pygls_compat.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer


def register(server: SparkLanguageServer) -> None:
    @server.feature(types.INITIALIZE)
    def on_initialize(ls: SparkLanguageServer, params: types.InitializeParams) -> None:
        ls.configure(params, ls.workspace.position_encoding)
        ls.start_session_soon()

    @server.feature(types.SHUTDOWN)
    async def on_shutdown(ls: SparkLanguageServer, *args: object) -> None:
        await ls.close()
