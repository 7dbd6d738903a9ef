"""initialize / initialized / shutdown."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from spark_ls.server.app import SparkLanguageServer


def register(server: SparkLanguageServer) -> None:
    @server.feature(types.INITIALIZE)
    def on_initialize(ls: SparkLanguageServer, params: types.InitializeParams) -> None:
        ls.configure(params)
        ls.encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
        # Warm the model session while the editor finishes its own start-up.
        ls.session_task = asyncio.get_running_loop().create_task(ls.start_session())

    @server.feature(types.SHUTDOWN)
    async def on_shutdown(ls: SparkLanguageServer, *args: object) -> None:
        if ls.running is not None:
            ls.running.cancel_all()
        if ls.prefetcher is not None:
            ls.prefetcher.cancel_all()
        if ls.session is not None:
            await ls.session.close()
