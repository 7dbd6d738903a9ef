"""The API key goes to the configured endpoint's Authorization header and nowhere else.

Full sessions with a known fake key — success, server errors, a refused reply, a retired model
with a fallback, an endpoint that echoes the key back in its error messages, the endpoint going
down — with the server logging at DEBUG and recording a cassette. Afterwards the key (or a
recognisable part of it) must not appear in: the server's whole stderr, any window/showMessage or
window/logMessage, any error response, any status notification, the cassette, the `check`
command's stdout/stderr and reports. On the wire, the endpoint saw it only as
``Authorization: Bearer <key>`` — never in another header, a URL or a request body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import server_env, wait_ready
from lsprotocol import types
from model_endpoint import ModelEndpoint
from reliability_helpers import (
    BUGGY,
    FIX_DIFF,
    LEAK_CHECK_KEY,
    logged_server_command,
    open_buggy,
    start_client,
    stop_client,
    wait_for,
)

KEY = LEAK_CHECK_KEY
FRAGMENTS = (KEY, "7f3a9c2e5b1d4a6f", "8e0c9b7a5d3f1e2c", "LEAKCHECK")


def assert_no_key(where: str, text: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"the API key ({fragment!r}) leaked into {where}"


def assert_key_only_in_authorization(endpoint: ModelEndpoint) -> None:
    assert endpoint.headers_seen, "the endpoint was never contacted"
    for headers in endpoint.headers_seen:
        assert headers.get("authorization") == f"Bearer {KEY}", headers.get("authorization")
        for name, value in headers.items():
            if name != "authorization":
                assert_no_key(f"the {name!r} header", value)
    assert_no_key("a request body", json.dumps(endpoint.requests))


def echo_key_errors(endpoint: ModelEndpoint) -> None:
    """Make the endpoint echo the key in every error message (as some proxies do)."""
    original = endpoint._error_for

    def leaky(status: int) -> dict[str, Any]:
        error = original(status)
        error["message"] = f"{error['message']} (request authorised with Bearer {KEY}; key={KEY})"
        return error

    endpoint._error_for = leaky  # type: ignore[method-assign]


async def _session(endpoint: ModelEndpoint, tmp_path: Path, init_options: dict[str, Any]) -> dict[str, str]:
    """Drive a varied session; return everything the user could see, by source."""
    log = tmp_path / "server.log"
    cassette = tmp_path / "cassette.jsonl"
    uri = (tmp_path / "buggy.py").as_uri()
    env = server_env(endpoint, OPENAI_API_KEY=KEY)
    options = {"record": str(cassette), "fallbackModels": ["gpt-5.3-codex"], "requestTimeout": 5, **init_options}
    errors: list[str] = []
    client = await start_client(logged_server_command(str(log)), env, init_options=options, root=tmp_path)
    try:
        await wait_ready(client)
        action = await open_buggy(client, uri)

        async def resolve(expect_ok: bool) -> None:
            try:
                resolved = await client.code_action_resolve_async(action)
                errors.append(repr(resolved))
                assert expect_ok
            except AssertionError:
                raise
            except Exception as exc:  # noqa: BLE001 - an error response: keep its text
                errors.append(repr(exc) + str(exc))
                assert not expect_ok, exc

        endpoint.replies.append(FIX_DIFF)
        await resolve(True)
        echo_key_errors(endpoint)
        endpoint.http_status, endpoint.http_status_times = 500, None
        await resolve(False)
        endpoint.http_status, endpoint.http_status_times = 429, None
        endpoint.retry_after = 0.01
        await resolve(False)
        endpoint.http_status = None
        endpoint.replies.append(FIX_DIFF.replace("total = 0", "subtotal = 0"))  # refused
        await resolve(False)
        endpoint.retired_models = {"gpt-5.3-codex-spark"}
        endpoint.replies.append(FIX_DIFF)
        await resolve(True)
        await wait_for(lambda: any("fallback" in m.message for m in client.messages), "the fallback notice")
        endpoint.stop()
        await resolve(False)
        endpoint.start()
        endpoint.replies.append(FIX_DIFF)
        await resolve(True)
    finally:
        await stop_client(client)
    seen = {
        "server stderr (DEBUG)": log.read_text(errors="replace"),
        "window/showMessage": "\n".join(m.message for m in client.messages),
        "window/logMessage": "\n".join(m.message for m in client.log_messages),
        "error responses": "\n".join(errors),
        "spark/status": repr(client.statuses),
        "publishDiagnostics": repr(client.diagnostics),
        "initialize result": repr(client.init_result),
        "the --record cassette": cassette.read_text(errors="replace"),
    }
    # The session really exercised what it claims to.
    assert "DEBUG" in seen["server stderr (DEBUG)"]
    assert len(seen["the --record cassette"].splitlines()) == 4  # every answered request, refused one included
    assert "HTTP 500" in seen["error responses"] and "refused" in seen["error responses"]
    assert "***" in seen["error responses"], "the endpoint's echoed key should show up redacted"
    return seen


@pytest.mark.parametrize("transport", ["ws", "responses", "chat"])
async def test_key_never_leaks_in_a_full_session(tmp_path: Path, transport: str) -> None:
    endpoint = ModelEndpoint(api_key=KEY, ws_supported=transport == "ws").start()
    try:
        seen = await _session(endpoint, tmp_path, {"transport": transport if transport != "ws" else "auto"})
    finally:
        endpoint.stop()
    for where, text in seen.items():
        assert_no_key(where, text)
    assert_key_only_in_authorization(endpoint)
    if transport == "ws":
        assert endpoint.connections_opened >= 1
    else:
        assert endpoint.http_connections_opened >= 1


def test_check_command_never_prints_or_records_the_key(tmp_path: Path) -> None:
    from check_helpers import make_repo, run_check

    repo = make_repo(tmp_path / "repo", {"buggy.py": BUGGY.encode()})
    cassette = tmp_path / "check.jsonl"
    with ModelEndpoint(api_key=KEY, reply_for=lambda body: FIX_DIFF) as endpoint:
        outputs = []
        for fmt in ("diff", "json", "sarif", "github"):
            result = run_check(repo, endpoint.base_url, "--format", fmt, "--record", str(cassette),
                               env={"OPENAI_API_KEY": KEY, "SPARK_LS_LOG": "DEBUG"})
            outputs.append((fmt, result))
        echo_key_errors(endpoint)
        endpoint.http_status, endpoint.http_status_times = 500, None
        failing = run_check(repo, endpoint.base_url, "--format", "json", env={"OPENAI_API_KEY": KEY})
        assert failing.returncode == 2 and "HTTP 500" in failing.stderr, failing.stderr
        outputs.append(("failing run", failing))
        wrong = run_check(repo, endpoint.base_url, env={"OPENAI_API_KEY": KEY + "x"})
        assert wrong.returncode == 2
        outputs.append(("wrong key", wrong))
    for name, result in outputs:
        assert_no_key(f"check {name} stdout", result.stdout)
        assert_no_key(f"check {name} stderr", result.stderr)
    assert cassette.exists() and cassette.read_text().strip()
    assert_no_key("the check cassette", cassette.read_text())


def test_models_listing_sends_the_key_only_to_the_endpoint(tmp_path: Path) -> None:
    import subprocess
    import sys

    with ModelEndpoint(api_key=KEY) as endpoint:
        env = server_env(endpoint, OPENAI_API_KEY=KEY, SPARK_LS_LOG="DEBUG")
        result = subprocess.run(
            [sys.executable, "-m", "spark_ls", "models"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "gpt-5.3-codex-spark" in result.stdout
        assert_no_key("spark-ls models output", result.stdout + result.stderr)
        assert_key_only_in_authorization(endpoint)


async def test_repr_of_settings_and_session_hide_the_key() -> None:
    from spark_ls.config import Secret, load_settings
    from spark_ls.model.session import open_session

    settings = load_settings(None, {"api_key": KEY, "base_url": "http://127.0.0.1:9/v1"})
    assert isinstance(settings.api_key, Secret)
    session = open_session(settings)
    try:
        for text in (repr(settings), str(settings), repr(settings.api_key), f"{settings.api_key}", repr(session)):
            assert_no_key("a repr", text)
    finally:
        await session.close()
    assert types is not None  # lsprotocol imported for the sessions above
