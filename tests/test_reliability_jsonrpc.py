"""Malformed JSON-RPC, raw bytes on a `spark-ls serve` subprocess's stdin.

Every request gets a response — an error response when it cannot be served (a client must never
wait forever for an id); a message that cannot even be read gets a JSON-RPC error with a null id;
a wrong Content-Length loses at most the messages it overlaps, after which the stream
resynchronises on the next header; and through all of it the server keeps answering.
Requests about unopened or closed documents fail with a clear error or an empty result.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from raw_lsp import RawServer, frame
from reliability_helpers import BUGGY, FIX_DIFF

INVALID_REQUEST, PARSE_ERROR, METHOD_NOT_FOUND, INVALID_PARAMS, REQUEST_FAILED = -32600, -32700, -32601, -32602, -32803


@pytest.fixture
async def raw(model_endpoint: Any) -> Any:
    server = await RawServer.start(model_endpoint)
    try:
        await server.request(0, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        assert "result" in await server.response(0)
        await server.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        yield server
    finally:
        await server.close()


async def test_unreadable_messages_get_a_null_id_error_and_the_server_lives(raw: RawServer) -> None:
    cases = [
        (b"{not json at all", PARSE_ERROR),
        (b'{"jsonrpc": "2.0", "id": 7, "method": "foo\xff\xfe"}', PARSE_ERROR),  # invalid UTF-8
        (b"42", INVALID_REQUEST),
        (b'[{"jsonrpc": "2.0", "id": 5, "method": "shutdown"}]', INVALID_REQUEST),  # LSP has no batches
        (b'"just a string"', INVALID_REQUEST),
    ]
    for n, (body, code) in enumerate(cases):
        await raw.send(frame(raw=body))
        error = (await raw.response(None))["error"]
        assert error["code"] == code, (body, error)
        await raw.alive(100 + n)


async def test_every_request_gets_an_answer(raw: RawServer) -> None:
    await raw.request(1, "spark/noSuchMethod", {})
    assert (await raw.response(1))["error"]["code"] == METHOD_NOT_FOUND
    # Unknown notifications are ignored (no response is allowed for a notification).
    await raw.send(frame({"jsonrpc": "2.0", "method": "spark/noSuchNotification", "params": {"x": 1}}))
    await raw.send(frame({"jsonrpc": "2.0", "method": "$/someClientExtension", "params": None}))
    # Params of the wrong type or shape, for methods spark-ls implements.
    bad_params = [
        ("textDocument/codeAction", {"textDocument": 5}),
        ("textDocument/codeAction", "hello"),
        ("textDocument/codeAction", {"textDocument": {"uri": "file:///x.py"}, "range": {"start": {"line": "zero"}}}),
        ("codeAction/resolve", [1, 2, 3]),
        ("codeAction/resolve", {"kind": "quickfix"}),  # no title
        ("workspace/executeCommand", {"command": 5}),
    ]
    for n, (method, params) in enumerate(bad_params, start=10):
        await raw.request(n, method, params)
        answer = await raw.response(n)
        assert answer.get("error", {}).get("code") == INVALID_PARAMS, (method, params, answer)
    # Well-formed but meaningless arguments to spark-ls's own commands and resolve data.
    for n, arguments in enumerate([[1, 2, 3], ["file:///x.py", "not a range", "do it"], [], [{"uri": 5}]], start=30):
        await raw.request(n, "workspace/executeCommand", {"command": "spark.editWithInstruction", "arguments": arguments})
        error = (await raw.response(n))["error"]
        assert error["code"] in (INVALID_PARAMS, REQUEST_FAILED), (arguments, error)
        assert "Traceback" not in json.dumps(error) and "spark.editWithInstruction" in error["message"], error
    await raw.request(40, "workspace/executeCommand", {"command": "spark.runAction", "arguments": ["junk"]})
    assert (await raw.response(40))["error"]["code"] in (INVALID_PARAMS, REQUEST_FAILED)
    await raw.request(41, "workspace/executeCommand", {"command": "rm -rf /", "arguments": []})
    assert (await raw.response(41))["error"]["code"] == INVALID_PARAMS
    # Notifications with bad params are dropped without a crash.
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": 1}}}))
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": 17}))
    await raw.alive(50)


@pytest.mark.parametrize("wrong", [-8, +8, -1000, +1000], ids=["short", "long", "much-shorter", "much-longer"])
async def test_wrong_content_length_loses_only_the_overlapped_messages(raw: RawServer, wrong: int) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "spark/noSuchMethod", "params": {"pad": "x" * 1200}}).encode()
    await raw.send(frame(raw=body, length=max(1, len(body) + wrong)))
    # Overlapped messages may be lost (and a "much longer" length swallows them whole); the
    # stream must resynchronise on a later header and answer the requests after it.
    for n in range(2, 6):
        await raw.send(frame({"jsonrpc": "2.0", "id": n, "method": "spark/noSuchMethod", "params": {}}))
    filler = [frame({"jsonrpc": "2.0", "method": "spark/filler", "params": {"pad": "y" * 200}}) for _ in range(8)]
    await raw.send(b"".join(filler))
    await raw.alive(60)
    await raw.alive(61)


async def test_missing_or_invalid_content_length_headers_are_skipped(raw: RawServer) -> None:
    await raw.send(b"Content-Type: application/vscode-jsonrpc\r\n\r\n{}")
    await raw.send(b"Content-Length: -5\r\n\r\n")
    await raw.send(b"Content-Length: five\r\n\r\n{}")
    await raw.send(b"\r\n\r\n\r\n")
    await raw.alive(70)


async def test_unopened_and_closed_documents(raw: RawServer, model_endpoint: Any) -> None:
    uri = "file:///tmp/closed.py"
    position = {"line": 6, "character": 4}
    listing = {
        "textDocument": {"uri": uri},
        "range": {"start": position, "end": position},
        "context": {"diagnostics": []},
    }
    data = {"uri": uri, "version": 1, "action": "fix-bug", "start_line": 6, "end_line": 6,
            "message": None, "scope": "average", "scope_kind": "function", "scope_start": 3, "instruction": None}
    rng = {"start": position, "end": position}

    async def resolve_fails(id_: int) -> None:
        await raw.request(id_, "codeAction/resolve", {"title": "Fix bug in average", "data": data})
        error = (await raw.response(id_))["error"]
        assert error["code"] == REQUEST_FAILED and "no open document" in error["message"], error
        await raw.request(id_ + 1, "workspace/executeCommand",
                          {"command": "spark.editWithInstruction", "arguments": [uri, rng, "fix it"]})
        error = (await raw.response(id_ + 1))["error"]
        assert error["code"] == REQUEST_FAILED and "no open document" in error["message"], error

    # Never opened: listing is empty, running fails clearly, changes and closes are ignored.
    await raw.request(1, "textDocument/codeAction", listing)
    assert (await raw.response(1))["result"] is None
    await resolve_fails(2)
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "x = 1\n"}]}}))
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}}))
    # Opened: the action is listed. Closed: the same requests fail again, without a model call.
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": BUGGY}}}))
    await raw.request(4, "textDocument/codeAction", listing)
    titles = [a["title"] for a in (await raw.response(4))["result"]]
    assert "Fix bug in average" in titles, titles
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}}))
    await raw.request(5, "textDocument/codeAction", listing)
    assert (await raw.response(5))["result"] is None
    model_endpoint.replies.append(FIX_DIFF)
    await resolve_fails(6)
    assert model_endpoint.requests == []
    await raw.alive(80)


async def test_huge_content_length_is_skipped_not_allocated(raw: RawServer) -> None:
    """A Content-Length of 50 GB used to kill the server (pygls allocates the whole body at once).
    Now the message is skipped in bounded chunks: a lying length resynchronises on the next real
    header, and the client gets an error instead of a dead server."""
    await raw.send(b"Content-Length: 50000000000\r\n\r\n{}")
    await raw.alive(90)
    error = (await raw.response(None))["error"]
    assert error["code"] == INVALID_REQUEST and "limit" in error["message"], error


async def test_real_oversized_message_is_skipped(raw: RawServer) -> None:
    from spark_ls.server.transport import MAX_MESSAGE_BYTES

    body = json.dumps({"jsonrpc": "2.0", "id": 91, "method": "textDocument/didOpen",
                       "params": {"textDocument": {"uri": "file:///huge.py", "languageId": "python", "version": 1,
                                                   "text": "x" * (MAX_MESSAGE_BYTES + 10)}}}).encode()
    await raw.send(frame(raw=body))
    error = (await raw.response(None, timeout=60))["error"]
    assert error["code"] == INVALID_REQUEST and str(len(body)) in error["message"], error
    await raw.alive(92)


async def test_absurd_positions_are_answered(raw: RawServer, model_endpoint: Any) -> None:
    """Positions far past the document, reversed ranges, and values outside LSP's uinteger range:
    valid ones are served (clamped), invalid ones get InvalidParams; the server lives."""
    uri = "file:///tmp/absurd.py"
    await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": BUGGY}}}))
    cases = [
        (((10**9, 0), (10**9, 5)), "ok"),
        (((8, 0), (3, 0)), "ok"),  # reversed
        (((5, 10**9), (2**31 - 1, 2**31 - 1)), "ok"),
        (((5, 10**9), (2**31, 2**31)), "invalid"),  # above uinteger
        (((-1, 0), (0, 0)), "invalid"),
        (((0, -5), (0, 0)), "invalid"),
        (((2**53, 0), (2**53, 0)), "invalid"),
    ]
    for n, ((start, end), expected) in enumerate(cases):
        rng = {"start": {"line": start[0], "character": start[1]}, "end": {"line": end[0], "character": end[1]}}
        await raw.request(200 + n, "textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": rng, "context": {"diagnostics": [{"range": rng, "message": "m"}]}})
        listing = await raw.response(200 + n)
        model_endpoint.replies.append("")
        await raw.request(300 + n, "workspace/executeCommand", {
            "command": "spark.editWithInstruction", "arguments": [uri, rng, "do it"]})
        command = await raw.response(300 + n)
        if expected == "ok":
            assert isinstance(listing.get("result"), list), listing
            assert command.get("result") == {"applied": False, "reason": "no change"}, command
        else:
            assert listing["error"]["code"] == INVALID_PARAMS and command["error"]["code"] == INVALID_PARAMS
    await raw.alive(400)
