"""Model-side faults, through the real server over stdio (`spark-ls serve` under pytest-lsp).

For every fault the fake endpoint can produce, one of two things must happen:

- the fault is survivable without showing anything (a drop before any token, one garbage frame,
  one 500, one 429 with retry-after, the 60-minute connection limit, a retired model with a
  configured fallback): the user gets the correct edit, and the endpoint log proves the fault
  really happened;
- it is not: the resolve fails with an error response naming the cause, a window/showMessage
  says the same, no edit is returned or applied, and the very next request — with the fault
  gone — succeeds on the same server process.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_API_KEY
from lsp_helpers import lsp_client, server_env, wait_ready
from lsprotocol import types
from model_endpoint import ModelEndpoint
from reliability_helpers import (
    BUGGY,
    FIX_DIFF,
    FIXED,
    applied,
    fix_action,
    open_buggy,
    resolve_edit,
    shown,
    wait_for,
)


async def _expect_failure(client: Any, action: types.CodeAction, needle: str) -> str:
    """The resolve fails with an error naming ``needle``; the user is told; nothing is applied."""
    before = len(client.messages)
    with pytest.raises(Exception) as failure:
        await client.code_action_resolve_async(action)
    error = str(failure.value)
    assert needle.lower() in error.lower(), error
    await wait_for(lambda: len(client.messages) > before, "a window/showMessage about the failure")
    messages = [m for m in shown(client, since=before) if needle.lower() in m.message.lower()]
    assert messages, [m.message for m in shown(client, since=before)]
    assert messages[0].type in (types.MessageType.Error, types.MessageType.Warning)
    assert messages[0].message.startswith("spark-ls: ")
    assert client.applied_edits == []
    return error


async def _expect_fixed(client: Any, action: types.CodeAction) -> None:
    change = await resolve_edit(client, action)
    assert change.text_document.version == 1
    assert applied(BUGGY, change) == FIXED


# (knobs set before the failing request, substring of the user-facing message, knobs that clear
# it, the outcome the endpoint records for each attempt — None where it cannot tell, as with
# garbage sent ahead of a reply the client never reads)
FATAL_FAULTS = {
    "drop-mid-stream": (
        {"drop_after_deltas": 2, "drop_times": None},
        "failed mid-reply",
        {"drop_after_deltas": None},
        "dropped",
    ),
    "garbage-frames-every-time": (
        {"garbage_frames": 2, "garbage_times": None},
        "not JSON",
        {"garbage_frames": 0},
        None,
    ),
    "http-500-persisting": (
        {"http_status": 500, "http_status_times": None},
        "HTTP 500",
        {"http_status": None},
        "error:server_error",
    ),
    "http-429-persisting": (
        {"http_status": 429, "http_status_times": None, "retry_after": 0.05},
        "rate limiting",
        {"http_status": None},
        "error:rate_limit_exceeded",
    ),
    "stall-past-timeout": (
        {"stall": True, "stall_times": None},
        "request_timeout",
        {"stall": False},
        "stalled",
    ),
}


@pytest.mark.parametrize("fault", sorted(FATAL_FAULTS))
async def test_fatal_fault_gives_message_and_error_then_recovers(fault: str, model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    knobs, needle, clear, outcome = FATAL_FAULTS[fault]
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path, init_options={"requestTimeout": 2, "maxRetries": 2}) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        for name, value in knobs.items():
            setattr(model_endpoint, name, value)
        model_endpoint.replies.append(FIX_DIFF)
        await _expect_failure(client, action, needle)
        assert any(s.state == "error" for s in client.statuses)
        # The fault really reached the wire, and retries were bounded.
        outcomes = [c.outcome for c in model_endpoint.calls]
        assert 1 <= len(outcomes) <= 3, outcomes  # first attempt + at most max_retries / one fresh socket
        if outcome is not None:
            assert all(o == outcome for o in outcomes), outcomes
        calls_before = len(outcomes)

        for name, value in clear.items():
            setattr(model_endpoint, name, value)
        model_endpoint.replies.clear()
        model_endpoint.replies.append(FIX_DIFF)
        await _expect_fixed(client, action)
        assert [c.outcome for c in model_endpoint.calls[calls_before:]] == ["completed"]


# (knobs, outcome the endpoint must have recorded for the first attempt)
SURVIVABLE_FAULTS = {
    "drop-before-first-token": ({"drop_after_deltas": 0, "drop_times": 1}, "dropped"),
    "one-garbage-burst": ({"garbage_frames": 3, "garbage_times": 1}, "completed"),
    "one-http-500": ({"http_status": 500, "http_status_times": 1}, "error:server_error"),
    "one-429-with-retry-after": (
        {"http_status": 429, "http_status_times": 1, "retry_after": 0.2},
        "error:rate_limit_exceeded",
    ),
}


@pytest.mark.parametrize("fault", sorted(SURVIVABLE_FAULTS))
async def test_transient_fault_is_retried_invisibly(fault: str, model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    knobs, first_outcome = SURVIVABLE_FAULTS[fault]
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        for name, value in knobs.items():
            setattr(model_endpoint, name, value)
        model_endpoint.replies.extend([FIX_DIFF, FIX_DIFF])
        await _expect_fixed(client, action)
        outcomes = [c.outcome for c in model_endpoint.calls]
        if fault == "one-garbage-burst":
            # Garbage arrives before the reply: the first attempt dies on it, a fresh socket answers.
            assert len(outcomes) == 2 and model_endpoint.connections_opened >= 2, outcomes
        else:
            assert outcomes[0] == first_outcome and outcomes[-1] == "completed" and len(outcomes) == 2, outcomes
        assert not [m for m in client.messages if m.type == types.MessageType.Error]


async def test_connection_age_limit_reconnects_transparently(tmp_path: Path) -> None:
    """The endpoint closes sockets after their age limit (as the real 60-minute limit does),
    both idle ones (close frame) and at the next response.create (in-band error event)."""
    endpoint = ModelEndpoint(api_key=TEST_API_KEY, connection_age_limit=1.0).start()
    try:
        uri = (tmp_path / "buggy.py").as_uri()
        async with lsp_client(endpoint, root=tmp_path, init_options={"poolSize": 1}) as client:
            await wait_ready(client)
            action = await open_buggy(client, uri)
            for round_ in range(2):
                opened = endpoint.connections_opened
                await wait_for(lambda: endpoint.open_connections == 0, "the endpoint to expire the socket", 10)
                endpoint.replies.append(FIX_DIFF)
                await _expect_fixed(client, action)
                assert endpoint.connections_opened > opened, round_
            assert all(c.outcome == "completed" for c in endpoint.calls)
            assert not [m for m in client.messages if m.type == types.MessageType.Error]
    finally:
        endpoint.stop()


async def test_retired_model_without_fallback_then_with_model_back(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        model_endpoint.retired_models = {"gpt-5.3-codex-spark"}
        error = await _expect_failure(client, action, "no longer available")
        assert "gpt-5.3-codex-spark" in error and "fallback" in error
        # The endpoint serves the model again (or the user fixed the setting): no restart needed.
        model_endpoint.retired_models = set()
        model_endpoint.replies.append(FIX_DIFF)
        await _expect_fixed(client, action)


async def test_retired_model_switches_to_configured_fallback_and_says_so(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    options = {"fallbackModels": ["gpt-5.3-codex"]}
    async with lsp_client(model_endpoint, root=tmp_path, init_options=options) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        model_endpoint.retired_models = {"gpt-5.3-codex-spark"}
        model_endpoint.replies.append(FIX_DIFF)
        await _expect_fixed(client, action)
        assert model_endpoint.requests[-1]["model"] == "gpt-5.3-codex"
        warnings = [m.message for m in client.messages if "fallback `gpt-5.3-codex`" in m.message]
        assert len(warnings) == 1, [m.message for m in client.messages]


async def test_pinned_retired_model_refuses_with_instructions(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    options = {"fallbackModels": ["gpt-5.3-codex"], "pin": True}
    async with lsp_client(model_endpoint, root=tmp_path, init_options=options) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        model_endpoint.retired_models = {"gpt-5.3-codex-spark"}
        error = await _expect_failure(client, action, "pinned model")
        assert "gpt-5.3-codex-spark" in error
        assert all(body["model"] == "gpt-5.3-codex-spark" for body in model_endpoint.requests)


async def test_endpoint_down_at_startup_and_back_later(tmp_path: Path) -> None:
    endpoint = ModelEndpoint(api_key=TEST_API_KEY).start()
    endpoint.stop()  # the port is remembered; nothing listens on it now
    try:
        uri = (tmp_path / "buggy.py").as_uri()
        async with lsp_client(endpoint, root=tmp_path, init_options={"connectTimeout": 2}) as client:
            await wait_ready(client)
            action = await open_buggy(client, uri)
            await _expect_failure(client, action, "cannot reach the model endpoint")
            endpoint.start()
            endpoint.replies.append(FIX_DIFF)
            await _expect_fixed(client, action)
            # Down again mid-session, then back: the same story.
            endpoint.stop()
            await _expect_failure(client, action, "cannot reach the model endpoint")
            endpoint.start()
            endpoint.replies.append(FIX_DIFF)
            await _expect_fixed(client, action)
    finally:
        endpoint.stop()


async def test_wrong_api_key_is_reported_without_the_key(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    wrong = "sk-wrong-key-abcdef0123456789"
    env = server_env(model_endpoint, OPENAI_API_KEY=wrong)
    async with lsp_client(model_endpoint, root=tmp_path, env=env) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        error = await _expect_failure(client, action, "rejected the API key")
        assert wrong not in error
        assert all(wrong not in m.message for m in client.messages)


async def test_oversized_reply_is_abandoned_then_next_request_works(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path, init_options={"maxReplyBytes": 2048}) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        model_endpoint.replies.append(FIX_DIFF + "+# padding\n" * 400)
        await _expect_failure(client, action, "max_reply_bytes")
        model_endpoint.replies.append(FIX_DIFF)
        await _expect_fixed(client, action)


async def test_cancelled_resolve_frees_the_slot(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    """A resolve the user cancels (window/workDoneProgress/cancel on its progress) while the model
    stalls fails cleanly and leaves no stuck slot: with a pool of one socket, the next request
    still gets an answer."""
    uri = (tmp_path / "buggy.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path, init_options={"poolSize": 1}) as client:
        await wait_ready(client)
        action = await open_buggy(client, uri)
        model_endpoint.stall, model_endpoint.stall_times = True, 1
        task = asyncio.ensure_future(client.code_action_resolve_async(action))
        await wait_for(lambda: any(c.outcome == "stalled" for c in model_endpoint.calls), "the stalled request")
        # As in an editor, whose cancel button appears with `begin`: the token is known to the
        # server only once the client's answer to window/workDoneProgress/create has arrived.
        await wait_for(
            lambda: any(r.kind == "begin" for reports in client.progress_reports.values() for r in reports),
            "the resolve's progress to begin",
        )
        (token,) = list(client.progress_reports)
        client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
        with pytest.raises(Exception) as failure:
            await asyncio.wait_for(task, 10)
        assert not isinstance(failure.value, asyncio.TimeoutError)
        assert client.progress_reports[token][-1].kind == "end"
        model_endpoint.replies.append(FIX_DIFF)
        await _expect_fixed(client, await fix_action(client, uri))
