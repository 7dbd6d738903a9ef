"""`spark-ls model-server` conformance, checked with the official `openai` SDK (and our session).
The same SDK checks run against tests/model_endpoint.py, keeping the fake endpoint honest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import TEST_API_KEY
from model_backends import ScriptedBackend
from model_endpoint import ModelEndpoint, input_text
from openai import AsyncOpenAI

from spark_ls.config import Settings
from spark_ls.model import ModelError, ModelRequest, open_session
from spark_ls.model_server.server import serve_model_server


@pytest.fixture
async def model_server() -> AsyncIterator[tuple[str, ScriptedBackend]]:
    backend = ScriptedBackend()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_model_server(Settings(), backend=backend, ready=ready.set_result))
    base_url = await asyncio.wait_for(ready, 10)
    try:
        yield base_url, backend
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert backend.closed


async def sdk_websocket_turn(base_url: str, api_key: str, model: str) -> tuple[list[str], str, Any]:
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    types: list[str] = []
    text = ""
    final = None
    async with client.responses.connect() as conn:
        await conn.response.create(model=model, input="make it faster", instructions="edit", store=False)
        async for event in conn:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                final = event.response
                break
    await client.close()
    return types, text, final


EXPECTED_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


async def test_sdk_websocket_mode_against_the_model_server(model_server: tuple[str, ScriptedBackend]) -> None:
    base_url, backend = model_server
    types, text, final = await sdk_websocket_turn(base_url, "x", "scripted-local")
    assert types == EXPECTED_SEQUENCE
    assert text == "edited:make it faster"
    assert final.output_text == "edited:make it faster"
    assert final.usage.input_tokens == 7 and final.usage.output_tokens == 3
    assert backend.requests[0].instructions == "edit"


async def test_sdk_websocket_mode_against_the_fake_endpoint() -> None:
    with ModelEndpoint(api_key=TEST_API_KEY, chunk_chars=11) as ep:
        ep.reply_for = lambda body: "edited:" + input_text(body["input"])
        types, text, final = await sdk_websocket_turn(ep.base_url, TEST_API_KEY, "gpt-5.3-codex-spark")
    assert types == EXPECTED_SEQUENCE
    assert text == final.output_text == "edited:make it faster"


async def sdk_http_stream(base_url: str, api_key: str, model: str) -> tuple[list[str], str, str]:
    client = AsyncOpenAI(base_url=base_url, api_key=api_key)
    stream = await client.responses.create(model=model, input="tidy", instructions="edit", stream=True)
    types: list[str] = []
    text = ""
    async for event in stream:
        types.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
    chat = await client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "edit"}, {"role": "user", "content": "tidy"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chat_text = ""
    async for chunk in chat:
        if chunk.choices:
            chat_text += chunk.choices[0].delta.content or ""
    await client.close()
    return types, text, chat_text


async def test_sdk_http_streaming_against_the_model_server(model_server: tuple[str, ScriptedBackend]) -> None:
    base_url, _backend = model_server
    types, text, chat_text = await sdk_http_stream(base_url, "x", "scripted-local")
    assert types == EXPECTED_SEQUENCE
    assert text == "edited:tidy"
    assert chat_text == "edited:tidy"


async def test_sdk_http_streaming_against_the_fake_endpoint() -> None:
    with ModelEndpoint(api_key=TEST_API_KEY, chunk_chars=6) as ep:
        ep.reply_for = lambda body: "edited:tidy"
        types, text, chat_text = await sdk_http_stream(ep.base_url, TEST_API_KEY, "gpt-5.3-codex-spark")
    assert types == EXPECTED_SEQUENCE
    assert text == chat_text == "edited:tidy"


async def test_spark_ls_session_shares_the_model_server(model_server: tuple[str, ScriptedBackend]) -> None:
    base_url, backend = model_server
    settings = Settings(base_url=base_url, model="scripted-local", pool_size=2)
    session = open_session(settings)
    await session.start()
    try:
        assert session.transport_name == "ws"
        first = await session.complete(ModelRequest("edit", "task one", conversation="f", context="FILE"))
        second = await session.complete(ModelRequest("edit", "task two", conversation="f", context="FILE"))
        assert (first.text, second.text) == ("edited:task one", "edited:task two")
        assert session.stats["chained"] == 1
        # Chained or not, the backend sees the same context.
        assert [(r.context, r.input) for r in backend.requests] == [("FILE", "task one"), ("FILE", "task two")]
    finally:
        await session.close()


async def test_model_server_refuses_a_non_loopback_host() -> None:
    backend = ScriptedBackend()
    with pytest.raises(ModelError) as info:
        await serve_model_server(Settings(), host="0.0.0.0", backend=backend)
    assert info.value.kind == "config"
    assert "--allow-remote" in info.value.message
    assert not backend.started


async def test_model_server_refuses_web_pages_but_serves_local_clients(model_server: tuple[str, ScriptedBackend]) -> None:
    import httpx

    base_url, _backend = model_server
    async with httpx.AsyncClient() as http:
        hostile = await http.get(f"{base_url}/models", headers={"Origin": "https://evil.example"})
        local_page = await http.get(f"{base_url}/models", headers={"Origin": "http://localhost:3000"})
        plain = await http.get(f"{base_url}/models")
    assert hostile.status_code == 403 and "web pages" in hostile.text
    assert local_page.status_code == 200 and plain.status_code == 200
