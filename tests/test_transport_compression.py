"""``ws_compression``: permessage-deflate on the model WebSocket is off by default (the endpoint
offers it; spark-ls declines), on when set, and either way the reply is the same."""

from __future__ import annotations

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint

from spark_ls.config import Secret, Settings
from spark_ls.model import ModelRequest, open_session


def _negotiated(session: object) -> list[str]:
    transport = session._transport  # type: ignore[attr-defined]
    sockets = [slot.socket for slot in transport._slots if slot.socket is not None]
    assert sockets, "no open socket"
    return [ext.name for ext in sockets[0].conn.protocol.extensions]


@pytest.mark.parametrize(("overrides", "expected"), [({}, []), ({"ws_compression": True}, ["permessage-deflate"])])
async def test_ws_compression_setting(model_endpoint: ModelEndpoint, overrides: dict, expected: list[str]) -> None:
    model_endpoint.reply_for = lambda _body: "x" * 3000
    settings = Settings(base_url=model_endpoint.base_url, api_key=Secret(TEST_API_KEY), transport="ws", pool_size=1).merged(overrides)
    session = open_session(settings)
    await session.start()
    try:
        reply = await session.complete(ModelRequest("reply", "task"))
        assert reply.text == "x" * 3000
        assert _negotiated(session) == expected
    finally:
        await session.close()


def test_ws_compression_is_a_user_setting() -> None:
    assert Settings().ws_compression is False
    assert Settings().merged({"wsCompression": True}).ws_compression is True
    assert Settings().merged({"ws-compression": "true"}).ws_compression is True
