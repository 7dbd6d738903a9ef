"""Classic mode (retired models, fallbacks, pinning), `spark-ls models`, and record/replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

from spark_ls.config import Secret, Settings
from spark_ls.model import (
    ModelError,
    ModelRequest,
    format_models,
    list_models,
    open_session,
)


def settings_for(ep: ModelEndpoint, **overrides: Any) -> Settings:
    base = Settings(base_url=ep.base_url, api_key=Secret(TEST_API_KEY), connect_timeout=3.0, request_timeout=10.0)
    return base.merged(overrides)


@pytest.mark.parametrize("transport", ["auto", "responses", "chat"])
async def test_retired_model_falls_back_once_with_a_single_notice(model_endpoint: ModelEndpoint, transport: str) -> None:
    model_endpoint.retired_models = {"gpt-4.1"}
    model_endpoint.reply_for = lambda body: f"from {body['model']}"
    notices: list[tuple[str, str]] = []
    session = open_session(
        settings_for(model_endpoint, model="gpt-4.1", fallback_models="gpt-5-mini,gpt-5.3-codex", transport=transport),
        notify=lambda level, message: notices.append((level, message)),
    )
    await session.start()
    try:
        assert session.model == "gpt-4.1"
        first = await session.complete(ModelRequest("x", "one"))
        second = await session.complete(ModelRequest("x", "two"))
        assert first.text == second.text == "from gpt-5-mini"
        assert session.model == "gpt-5-mini"
        assert len(notices) == 1
        level, message = notices[0]
        assert level == "warning"
        assert "`gpt-4.1`" in message and "`gpt-5-mini`" in message and "pin = true" in message
        assert [b["model"] for b in model_endpoint.requests] == ["gpt-4.1", "gpt-5-mini", "gpt-5-mini"]
    finally:
        await session.close()


async def test_pinned_retired_model_is_refused_without_switching(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.retired_models = {"gpt-4.1"}
    notices: list[tuple[str, str]] = []
    session = open_session(
        settings_for(model_endpoint, model="gpt-4.1", fallback_models=["gpt-5-mini"], pin=True),
        notify=lambda level, message: notices.append((level, message)),
    )
    await session.start()
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "y"))
        assert info.value.kind == "pinned"
        assert "`gpt-4.1`" in info.value.message
        assert "pin = false" in info.value.message and "fallback_models" in info.value.message
        assert notices == []
        assert session.model == "gpt-4.1"
        assert [b["model"] for b in model_endpoint.requests] == ["gpt-4.1"]
    finally:
        await session.close()


async def test_no_fallback_left_is_a_retired_error(model_endpoint: ModelEndpoint) -> None:
    model_endpoint.retired_models = {"gpt-4.1", "gpt-5-mini"}
    session = open_session(settings_for(model_endpoint, model="gpt-4.1", fallback_models=["gpt-5-mini"]), notify=lambda *_: None)
    await session.start()
    try:
        with pytest.raises(ModelError) as info:
            await session.complete(ModelRequest("x", "y"))
        assert info.value.kind == "retired"
        assert "no fallback is left" in info.value.message
        assert "spark-ls models" in info.value.message
    finally:
        await session.close()


async def test_list_models_reports_available_missing_and_shutdown_dates() -> None:
    with ModelEndpoint(
        api_key=TEST_API_KEY,
        models=("gpt-5.3-codex-spark", "gpt-4.1"),
        shutdown_dates={"gpt-4.1": "2027-01-15"},
    ) as ep:
        statuses = await list_models(settings_for(ep, model="gpt-4.1", fallback_models=["gpt-5-mini", "gpt-5.3-codex-spark"]))
    assert [(s.name, s.role, s.available, s.shutdown_date) for s in statuses] == [
        ("gpt-4.1", "model", True, "2027-01-15"),
        ("gpt-5-mini", "fallback", False, None),
        ("gpt-5.3-codex-spark", "fallback", True, None),
    ]
    table = format_models(statuses)
    lines = table.splitlines()
    assert lines[0].split() == ["MODEL", "ROLE", "STATUS", "SHUTDOWN", "NOTE"]
    assert "gpt-4.1" in lines[1] and "available" in lines[1] and "2027-01-15" in lines[1]
    assert "gpt-5-mini" in lines[2] and "missing" in lines[2]


async def test_list_models_with_a_bad_key_is_an_auth_error() -> None:
    with ModelEndpoint(api_key=TEST_API_KEY) as ep, pytest.raises(ModelError) as info:
        await list_models(settings_for(ep, api_key="sk-not-the-right-one-1234"))
    assert info.value.kind == "auth"
    assert "sk-not-the-right-one-1234" not in info.value.message


async def test_record_then_replay_is_identical_without_an_endpoint(tmp_path: Path) -> None:
    recording = tmp_path / "model.jsonl"
    requests = [ModelRequest("fix", f"task {i}", context="file text") for i in range(3)]
    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.reply_for = lambda body: "reply to " + input_text(body["input"]).splitlines()[-1]
        session = open_session(settings_for(ep, record=str(recording)))
        await session.start()
        try:
            recorded = [await session.complete(r) for r in requests]
        finally:
            await session.close()
    text = recording.read_text()
    assert TEST_API_KEY not in text and "Bearer" not in text
    assert len(text.splitlines()) == 3
    # No endpoint at all now: an unroutable base URL proves nothing is contacted.
    replay_settings = Settings(base_url="http://127.0.0.1:9/v1", api_key=Secret(TEST_API_KEY), replay=str(recording))
    for _ in range(2):
        session = open_session(replay_settings)
        await session.start()
        try:
            deltas: list[str] = []
            replayed = [await session.complete(r, on_delta=deltas.append) for r in reversed(requests)]
            assert [r.text for r in reversed(replayed)] == [r.text for r in recorded]
            assert list(reversed(replayed)) == recorded
            assert "".join(deltas) == "".join(r.text for r in replayed)
            assert session.transport_name == "replay"
        finally:
            await session.close()


async def test_replay_miss_names_the_request(tmp_path: Path) -> None:
    recording = tmp_path / "model.jsonl"
    recording.write_text("")
    session = open_session(Settings(replay=str(recording), api_key=Secret(TEST_API_KEY)))
    await session.start()
    with pytest.raises(ModelError) as info:
        await session.complete(ModelRequest("fix", "Rename the variable\nmore lines"))
    assert info.value.kind == "replay_miss"
    assert "Rename the variable" in info.value.message
    assert str(recording) in info.value.message


def test_replay_key_ignores_conversation_but_not_content() -> None:
    from spark_ls.model.replay import request_key

    a = ModelRequest("i", "x", conversation="file:///a", context="c")
    b = ModelRequest("i", "x", conversation="file:///b", context="c")
    c = ModelRequest("i", "y", conversation="file:///a", context="c")
    assert request_key("m", a) == request_key("m", b)
    assert request_key("m", a) != request_key("m", c)
    assert request_key("m", a) != request_key("other", a)
