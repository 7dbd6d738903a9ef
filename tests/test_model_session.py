"""ModelSession against the fake endpoint over real loopback sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from typing import Any

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

from spark_ls.config import Secret, Settings
from spark_ls.model import ModelError, ModelRequest, open_session
from spark_ls.model.session import ModelSession


def settings_for(ep: ModelEndpoint, **overrides: Any) -> Settings:
    base = Settings(base_url=ep.base_url, api_key=Secret(TEST_API_KEY), connect_timeout=3.0, request_timeout=10.0)
    return base.merged(overrides) if overrides else base


def echo(body: dict[str, Any]) -> str:
    return "echo:" + input_text(body.get("input")).splitlines()[-1]


async def started(settings: Settings, **kw: Any) -> ModelSession:
    session = open_session(settings, **kw)
    await session.start()
    return session


async def test_start_warms_every_pool_socket_without_asking_for_output(model_endpoint: ModelEndpoint) -> None:
    session = await started(settings_for(model_endpoint, pool_size=2))
    try:
        assert model_endpoint.warmups == 2
        assert model_endpoint.connections_opened == 2
        assert model_endpoint.requests == []
        assert session.transport_name == "ws"
        assert session.edit_format == "diff"
    finally:
        await session.close()


async def test_requests_reuse_pooled_sockets_and_send_the_documented_body(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.reply_for = echo
    session = await started(settings_for(model_endpoint, pool_size=2))
    try:
        replies = await asyncio.gather(*(session.complete(ModelRequest("fix it", f"task {i}")) for i in range(8)))
        assert [r.text for r in replies] == [f"echo:task {i}" for i in range(8)]
        assert model_endpoint.connections_opened == 2
        body = model_endpoint.requests[0]
        assert body["store"] is False
        assert body["instructions"] == "fix it"
        assert body["model"] == "gpt-5.3-codex-spark"
        assert "previous_response_id" not in body
        upgrade_headers = [h for h in model_endpoint.headers_seen if h.get("upgrade", "").lower() == "websocket"]
        assert all(h["openai-beta"] == "responses_websockets=2026-02-06" for h in upgrade_headers)
        assert all(h["authorization"] == f"Bearer {TEST_API_KEY}" for h in upgrade_headers)
        assert session.stats["requests"] == 8
        assert all(r.usage["output_tokens"] >= 1 for r in replies)
    finally:
        await session.close()


async def test_queued_requests_are_served_in_arrival_order(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.reply_for = echo
    model_endpoint.first_token_delay = 0.05
    session = await started(settings_for(model_endpoint, pool_size=1))
    try:
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(session.complete(ModelRequest("x", f"n{i}"))))
            await asyncio.sleep(0)  # submit in a known order
        await asyncio.gather(*tasks)
        assert [input_text(b["input"]) for b in model_endpoint.requests] == [f"n{i}" for i in range(5)]
        assert model_endpoint.connections_opened == 1
    finally:
        await session.close()


async def test_deltas_stream_to_the_caller(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.append("abcdefghijklmnopqrstuvwxyz")
    model_endpoint.chunk_chars = 5
    session = await started(settings_for(model_endpoint))
    seen: list[str] = []
    try:
        reply = await session.complete(ModelRequest("x", "y"), on_delta=seen.append)
        assert seen == ["abcde", "fghij", "klmno", "pqrst", "uvwxy", "z"]
        assert reply.text == "".join(seen)
        assert reply.response_id and reply.response_id.startswith("resp_")
    finally:
        await session.close()


async def test_drop_before_any_text_is_retried_on_a_fresh_socket(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["first attempt lost", "second attempt"])
    model_endpoint.drop_after_deltas = 0
    session = await started(settings_for(model_endpoint, pool_size=1))
    try:
        reply = await session.complete(ModelRequest("x", "y"))
        assert reply.text == "second attempt"
        assert [c.outcome for c in model_endpoint.calls] == ["dropped", "completed"]
        assert model_endpoint.connections_opened == 2
        assert session.stats["retries"] == 1
    finally:
        await session.close()


async def test_drop_after_text_was_streamed_fails_cleanly_then_recovers(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["0123456789abcdefghij", "fine"])
    model_endpoint.chunk_chars = 4
    model_endpoint.drop_after_deltas = 2
    session = await started(settings_for(model_endpoint, pool_size=1))
    seen: list[str] = []
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "y"), on_delta=seen.append)
        assert info.value.kind == "network"
        assert seen == ["0123", "4567"]
        assert len(model_endpoint.requests) == 1  # not resent after text reached the caller
        reply = await session.complete(ModelRequest("x", "again"))
        assert reply.text == "fine"
    finally:
        await session.close()


async def test_garbage_frames_once_are_survived_and_persistent_garbage_is_a_protocol_error(
    model_endpoint: ModelEndpoint,
) -> None:
    model_endpoint.replies.extend(["lost", "clean", "never"])
    model_endpoint.garbage_frames = 2
    session = await started(settings_for(model_endpoint, pool_size=1))
    try:
        assert (await session.complete(ModelRequest("x", "y"))).text == "clean"
        model_endpoint.garbage_times = None  # every request from now on
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "z"))
        assert info.value.kind == "protocol"
        assert "JSON" in info.value.message
    finally:
        await session.close()


async def test_unknown_event_types_are_ignored(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.unknown_events = 3
    model_endpoint.replies.append("ok")
    session = await started(settings_for(model_endpoint))
    try:
        assert (await session.complete(ModelRequest("x", "y"))).text == "ok"
    finally:
        await session.close()


async def test_server_errors_are_retried_then_reported(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["after one 500"])
    model_endpoint.http_status = 500
    model_endpoint.http_status_times = 1
    session = await started(settings_for(model_endpoint, max_retries=2))
    session_retries_before = session.stats["retries"]
    try:
        assert (await session.complete(ModelRequest("x", "y"))).text == "after one 500"
        assert session.stats["retries"] == session_retries_before + 1
        model_endpoint.http_status_times = None  # always failing now
        calls_before = len(model_endpoint.requests)
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "z"))
        assert info.value.kind == "server"
        assert info.value.status == 500
        assert len(model_endpoint.requests) - calls_before == 3  # first try + max_retries
    finally:
        await session.close()


async def test_rate_limits_honour_retry_after_then_give_up(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.append("after 429")
    model_endpoint.http_status = 429
    model_endpoint.retry_after = 0.05
    session = await started(settings_for(model_endpoint, max_retries=1))
    try:
        assert (await session.complete(ModelRequest("x", "y"))).text == "after 429"
        model_endpoint.http_status_times = None
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "z"))
        assert info.value.kind == "rate_limit"
        assert info.value.retry_after == pytest.approx(0.05)
    finally:
        await session.close()


async def test_endpoint_down_at_start_then_back() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    ep = ModelEndpoint(api_key=TEST_API_KEY, port=port)
    session = open_session(settings_for(ep, connect_timeout=1.0))
    await session.start()  # must not raise
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "while down"))
        assert info.value.kind == "network"
        assert f"127.0.0.1:{port}" in info.value.message
        ep.start()
        try:
            ep.replies.append("back")
            assert (await session.complete(ModelRequest("x", "after"))).text == "back"
        finally:
            ep.stop()
    finally:
        await session.close()


async def test_server_closing_idle_sockets_is_transparent(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["one", "two"])
    session = await started(settings_for(model_endpoint, pool_size=1))
    try:
        assert (await session.complete(ModelRequest("x", "a"))).text == "one"
        model_endpoint.close_all_connections()
        await model_endpoint.until(lambda: model_endpoint.open_connections == 0, "every socket closed")
        assert (await session.complete(ModelRequest("x", "b"))).text == "two"
        assert model_endpoint.connections_opened == 2
    finally:
        await session.close()


async def test_connection_limit_event_reconnects_and_continues() -> None:
    with ModelEndpoint(api_key=TEST_API_KEY, connection_age_limit=0.2) as ep:
        ep.replies.extend(["before", "after"])
        session = await started(settings_for(ep, pool_size=1))
        try:
            assert (await session.complete(ModelRequest("x", "a"))).text == "before"
            # the server retires the socket with websocket_connection_limit_reached
            await ep.until(lambda: ep.age_limits_sent >= 1, "the connection age limit reached")
            assert (await session.complete(ModelRequest("x", "b"))).text == "after"
            assert ep.connections_opened >= 2
        finally:
            await session.close()


async def test_sockets_are_replaced_before_max_connection_age(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["a", "b"])
    # Below the setting's minimum (1 s) to keep the test short: replace() skips validation.
    session = await started(dataclasses.replace(settings_for(model_endpoint, pool_size=1), max_connection_age=0.1))
    try:
        await model_endpoint.until(lambda: model_endpoint.open_connections == 0, "the aged socket retired")
        assert (await session.complete(ModelRequest("x", "y"))).text in ("a", "b")
        assert model_endpoint.connections_opened == 2
        assert all(not c.outcome.startswith("error") for c in model_endpoint.calls)
    finally:
        await session.close()


async def test_cancelling_a_request_retires_its_socket_and_frees_the_slot(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.stall = True
    model_endpoint.stall_times = 1
    model_endpoint.replies.extend(["unused", "next"])
    session = await started(settings_for(model_endpoint, pool_size=1))
    try:
        task = asyncio.create_task(session.complete(ModelRequest("x", "slow")))
        await model_endpoint.until(lambda: model_endpoint.calls, "the request reached the endpoint")
        assert model_endpoint.calls[0].outcome == "stalled"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reply = await session.complete(ModelRequest("x", "fast"))  # would hang if the slot leaked
        assert reply.text in ("unused", "next")
        assert model_endpoint.connections_opened == 2  # the abandoned socket was replaced
        assert model_endpoint.calls[-1].connection_id != model_endpoint.calls[0].connection_id
    finally:
        await session.close()


async def test_request_timeout_is_a_timeout_error_and_the_session_recovers(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.stall = True
    model_endpoint.stall_times = 1
    model_endpoint.replies.append("ok")
    session = await started(settings_for(model_endpoint, pool_size=1, request_timeout=0.3))
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "y"))
        assert info.value.kind == "timeout"
        assert "request_timeout" in info.value.message
        assert (await session.complete(ModelRequest("x", "z"))).text == "ok"
    finally:
        await session.close()


async def test_oversized_reply_is_abandoned(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["x" * 200, "small"])
    session = await started(dataclasses.replace(settings_for(model_endpoint, pool_size=1), max_reply_bytes=64))  # below the minimum
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "y"))
        assert info.value.kind == "too_large"
        assert (await session.complete(ModelRequest("x", "z"))).text == "small"
    finally:
        await session.close()


async def test_http_fallback_when_websocket_upgrade_is_refused() -> None:
    for status in (404, 426):
        with ModelEndpoint(api_key=TEST_API_KEY, ws_supported=False, ws_reject_status=status) as ep:
            ep.reply_for = echo
            session = await started(settings_for(ep))
            try:
                assert session.transport_name == "responses"
                reply = await session.complete(ModelRequest("x", "over http"))
                assert reply.text == "echo:over http"
                assert [c.transport for c in ep.calls] == ["responses"]
                assert ep.requests[0]["stream"] is True
                await session.complete(ModelRequest("x", "again"))
                assert ep.upgrades_rejected == 2  # the pool's start-up attempts, never retried later
                assert ep.http_connections_opened == 1  # keep-alive
            finally:
                await session.close()


async def test_forced_websocket_transport_reports_unavailable_instead_of_falling_back() -> None:
    with ModelEndpoint(api_key=TEST_API_KEY, ws_supported=False) as ep:
        session = await started(settings_for(ep, transport="ws"))
        try:
            with pytest.raises(ModelError) as info:
                await session.complete(ModelRequest("x", "y"))
            assert info.value.kind == "unavailable"
            assert ep.calls == []
        finally:
            await session.close()


async def test_responses_http_transport_streams_and_retries(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["after 503", "later"])
    model_endpoint.http_status = 503
    session = await started(settings_for(model_endpoint, transport="responses"))
    seen: list[str] = []
    try:
        assert (await session.complete(ModelRequest("x", "y"), on_delta=seen.append)).text == "after 503"
        assert "".join(seen) == "after 503"
        assert [c.outcome for c in model_endpoint.calls] == ["error:503", "completed"]
        assert model_endpoint.connections_opened == 0
    finally:
        await session.close()


@pytest.mark.parametrize("choices_null", [False, True])
async def test_chat_completions_transport(model_endpoint: ModelEndpoint, choices_null: bool) -> None:
    model_endpoint.chat_usage_choices_null = choices_null
    model_endpoint.replies.append("chat reply text")
    session = await started(settings_for(model_endpoint, transport="chat"))
    seen: list[str] = []
    try:
        reply = await session.complete(ModelRequest("be brief", "task", context="file text"), on_delta=seen.append)
        assert reply.text == "chat reply text" == "".join(seen)
        assert reply.usage["completion_tokens"] >= 1
        body = model_endpoint.requests[0]
        assert body["messages"][0] == {"role": "system", "content": "be brief"}
        assert body["messages"][1]["content"] == "file text\n\ntask"
        assert body["stream_options"] == {"include_usage": True}
        assert session.transport_name == "chat"
    finally:
        await session.close()


async def test_chat_transport_drop_mid_stream_is_a_network_error(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.append("0123456789abcdef")
    model_endpoint.chunk_chars = 4
    model_endpoint.drop_after_deltas = 2
    session = await started(settings_for(model_endpoint, transport="chat"))
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "y"))
        assert info.value.kind == "network"
    finally:
        await session.close()


async def test_conversation_chains_on_the_same_socket_and_recovers_when_the_chain_is_gone(
    model_endpoint: ModelEndpoint,
) -> None:
    model_endpoint.reply_for = echo
    session = await started(settings_for(model_endpoint, pool_size=1))
    context = "FILE CONTEXT line 1\nline 2"
    try:
        first = await session.complete(ModelRequest("edit", "task one", conversation="file:///a.py", context=context))
        second = await session.complete(ModelRequest("edit", "task two", conversation="file:///a.py", context=context))
        b1, b2 = model_endpoint.requests
        assert "previous_response_id" not in b1
        assert input_text(b1["input"]) == context + "\ntask one"
        assert b2["previous_response_id"] == first.response_id
        assert input_text(b2["input"]) == "task two"  # the context is not resent
        assert b2["instructions"] == "edit"  # instructions are not carried over by the server
        assert context in model_endpoint.calls[1].context_text  # ...but the model still has it
        assert second.text == "echo:task two"

        model_endpoint.forget_responses()
        third = await session.complete(ModelRequest("edit", "task three", conversation="file:///a.py", context=context))
        assert third.text == "echo:task three"
        assert [c.outcome for c in model_endpoint.calls[2:]] == ["error:previous_response_not_found", "completed"]
        resent = model_endpoint.requests[3]
        assert "previous_response_id" not in resent
        assert input_text(resent["input"]) == context + "\ntask three"
        assert session.stats["resent_full"] == 1

        await session.complete(ModelRequest("edit", "task four", conversation="file:///a.py", context=context + "\nchanged"))
        assert "previous_response_id" not in model_endpoint.requests[-1]  # changed context: full resend
    finally:
        await session.close()


async def test_bad_key_is_an_auth_error_naming_the_env_var_and_never_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "sk-wrong-key-9f8e7d6c5b4a"
    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        for transport in ("auto", "responses", "chat"):
            session = await started(settings_for(ep, api_key=wrong_key, transport=transport))
            try:
                with pytest.raises(ModelError) as info:
                    await session.complete(ModelRequest("x", "y"))
                assert info.value.kind == "auth"
                assert "OPENAI_API_KEY" in info.value.message
                assert wrong_key not in info.value.message
                assert wrong_key not in repr(session) + str(session.stats) + repr(session.settings)
            finally:
                await session.close()
    assert wrong_key not in caplog.text
    assert "Bearer" not in caplog.text


async def test_key_never_reaches_logs_across_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with ModelEndpoint(api_key=TEST_API_KEY, drop_after_deltas=0, garbage_frames=1, http_status=500) as ep:
        ep.replies.extend(["a", "b", "c", "d"])
        session = await started(settings_for(ep, max_retries=1))
        try:
            for _ in range(3):
                try:
                    await session.complete(ModelRequest("x", "y"))
                except ModelError as exc:
                    assert TEST_API_KEY not in exc.message
        finally:
            await session.close()
    assert len(caplog.records) > 0
    assert TEST_API_KEY not in caplog.text


async def test_the_key_only_goes_to_the_configured_endpoint(model_endpoint: ModelEndpoint) -> None:
    session = await started(settings_for(model_endpoint))
    try:
        await session.complete(ModelRequest("x", "y"))
        assert model_endpoint.headers_seen
        assert all(h.get("authorization") == f"Bearer {TEST_API_KEY}" for h in model_endpoint.headers_seen)
    finally:
        await session.close()
    with ModelEndpoint() as other:  # a keyless endpoint (e.g. a local server) configured without a key
        session = await started(Settings(base_url=other.base_url, transport="ws"))
        try:
            await session.complete(ModelRequest("x", "y"))
            assert all("authorization" not in h for h in other.headers_seen)
        finally:
            await session.close()


async def test_auto_falls_back_to_chat_on_a_chat_only_server() -> None:
    with ModelEndpoint(api_key=TEST_API_KEY, ws_supported=False, responses_supported=False) as ep:
        ep.replies.extend(["via chat", "again via chat"])
        session = await started(settings_for(ep))
        try:
            assert (await session.complete(ModelRequest("x", "y"))).text == "via chat"
            assert session.transport_name == "chat"
            assert (await session.complete(ModelRequest("x", "z"))).text == "again via chat"
            assert [c.transport for c in ep.calls] == ["chat", "chat"]
        finally:
            await session.close()


async def test_idle_sockets_are_closed_and_reopened_on_demand(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.replies.extend(["one", "two"])
    session = await started(dataclasses.replace(settings_for(model_endpoint, pool_size=1), idle_timeout=0.2))  # below the minimum
    try:
        assert (await session.complete(ModelRequest("x", "a"))).text == "one"
        await model_endpoint.until(lambda: model_endpoint.open_connections == 0, "the idle socket closed")
        assert (await session.complete(ModelRequest("x", "b"))).text == "two"
        assert model_endpoint.connections_opened == 2
    finally:
        await session.close()


async def test_disabling_tls_verification_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    session = open_session(Settings(base_url="https://models.example.invalid/v1", api_key=Secret(TEST_API_KEY), tls_verify=False))
    assert any("TLS certificate verification is OFF" in r.getMessage() for r in caplog.records)
    assert TEST_API_KEY not in caplog.text
    await session.close()


def test_local_model_is_chosen_without_endpoint_or_key_and_edits_by_scope() -> None:
    session = open_session(Settings())
    assert session.transport_name == "local"
    assert session.edit_format == "scope"
    assert "local" in session.model
    hosted = open_session(Settings(api_key=Secret(TEST_API_KEY)))
    assert hosted.transport_name == "ws" and hosted.edit_format == "diff"
    assert hosted.model == "gpt-5.3-codex-spark"
    forced = open_session(Settings(api_key=Secret(TEST_API_KEY), edit_format="scope"))
    assert forced.edit_format == "scope"


@pytest.mark.parametrize("transport", ["ws", "responses", "chat"])
async def test_redirects_are_refused_so_the_key_never_goes_elsewhere(transport: str) -> None:
    with ModelEndpoint() as elsewhere, ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.redirect_to = elsewhere.base_url
        session = await started(settings_for(ep, transport=transport))
        try:
            with pytest.raises(ModelError) as info:
                await session.complete(ModelRequest("x", "y"))
            assert info.value.kind == "config"
            assert "redirects" in info.value.message and "base_url" in info.value.message
        finally:
            await session.close()
        assert elsewhere.headers_seen == []
