"""A resolve's $/progress when the editor answers ``window/workDoneProgress/create`` late or
early: the action does not wait for that answer, yet the editor always gets begin -> end for the
token it created, before the action's result, and never a begin for a token it did not create.
Raw JSON-RPC over stdio against `spark-ls serve`, answering the server's requests by hand."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from raw_lsp import RawServer, frame
from reliability_helpers import BUGGY, fix_diff

CREATE = "window/workDoneProgress/create"


async def _started(model_endpoint: Any, tmp_path: Any) -> tuple[RawServer, str, dict[str, Any]]:
    server = await RawServer.start(model_endpoint)
    uri = (tmp_path / "buggy.py").as_uri()
    await server.initialize_and_open(tmp_path, uri, BUGGY, progress=True)
    position = {"line": 6, "character": 8}
    await server.request(1, "textDocument/codeAction", {
        "textDocument": {"uri": uri}, "range": {"start": position, "end": position}, "context": {"diagnostics": []}})
    fix = next(a for a in (await server.response(1))["result"] if a["title"] == "Fix bug in average")
    return server, uri, fix


async def _resolve_until_create(server: RawServer, id_: int, fix: dict[str, Any]) -> dict[str, Any]:
    """Send codeAction/resolve; the server's window/workDoneProgress/create request for it."""
    await server.request(id_, "codeAction/resolve", fix)
    return await _server_request(server, CREATE)


async def _server_request(server: RawServer, method: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in server.inbox:
            if message.get("method") == method and "id" in message:
                return message
        await asyncio.sleep(0.005)
    raise AssertionError(f"no {method} request; received {server.inbox}")


def _progress_kinds(server: RawServer, token: str) -> list[str]:
    return [m["params"]["value"]["kind"] for m in server.inbox
            if m.get("method") == "$/progress" and m["params"]["token"] == token]


async def test_late_create_answer_still_gets_begin_then_end_before_the_result(model_endpoint: Any, tmp_path: Any) -> None:
    server, _, fix = await _started(model_endpoint, tmp_path)
    try:
        model_endpoint.replies.append(fix_diff("buggy.py"))
        create = await _resolve_until_create(server, 2, fix)
        token = create["params"]["token"]
        await asyncio.sleep(0.4)  # the model has answered long ago; the editor is slow
        assert model_endpoint.requests, "the action waited for the create answer before asking the model"
        assert _progress_kinds(server, token) == []  # nothing for a token the editor has not created
        assert not any(m.get("id") == 2 and "method" not in m for m in server.inbox), "result before begin/end"
        await server.send(frame({"jsonrpc": "2.0", "id": create["id"], "result": None}))
        response = await server.response(2)
        assert response["result"]["edit"], response
        assert _progress_kinds(server, token) == ["begin", "end"]
    finally:
        await server.close()


async def test_prompt_create_answer_shows_progress_while_the_model_works(model_endpoint: Any, tmp_path: Any) -> None:
    server, _, fix = await _started(model_endpoint, tmp_path)
    try:
        model_endpoint.first_token_delay = 0.5
        model_endpoint.replies.append(fix_diff("buggy.py"))
        create = await _resolve_until_create(server, 3, fix)
        token = create["params"]["token"]
        await server.send(frame({"jsonrpc": "2.0", "id": create["id"], "result": None}))
        deadline = time.monotonic() + 5
        while _progress_kinds(server, token) != ["begin"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert _progress_kinds(server, token) == ["begin"]  # shown while the model is still thinking
        assert not any(m.get("id") == 3 and "method" not in m for m in server.inbox)
        response = await server.response(3)
        assert response["result"]["edit"], response
        kinds = _progress_kinds(server, token)
        assert kinds[0] == "begin" and kinds[-1] == "end" and set(kinds[1:-1]) <= {"report"}, kinds
    finally:
        await server.close()


async def test_failed_create_means_no_progress_and_the_action_still_runs(model_endpoint: Any, tmp_path: Any) -> None:
    server, _, fix = await _started(model_endpoint, tmp_path)
    try:
        model_endpoint.replies.append(fix_diff("buggy.py"))
        create = await _resolve_until_create(server, 4, fix)
        await server.send(frame({"jsonrpc": "2.0", "id": create["id"], "error": {"code": -32603, "message": "no"}}))
        response = await server.response(4)
        assert response["result"]["edit"], response
        await asyncio.sleep(0.1)
        assert not [m for m in server.inbox if m.get("method") == "$/progress"]
    finally:
        await server.close()
