"""Clean shutdown (#11 repro 4 and 5): `shutdown` + `exit` end the server with exit code 0 and
no signal, over stdio (stdin kept open or closed), TCP and WebSocket; expected events (a clean
exit, a malformed message that got its error reply) log one line at WARNING or below, no
traceback. A race shows up as a failure in the 20-run loop."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import server_env
from raw_lsp import RawServer, frame

RUNS = 20
PARALLEL = 4
INITIALIZE = {"processId": None, "rootUri": None, "capabilities": {}}
_NOISE = re.compile(r"Traceback|Fatal Python error|SystemExit|Unhandled exception| ERROR |CRITICAL")


def assert_quiet(stderr: str) -> None:
    assert not _NOISE.search(stderr), stderr[-3000:]


async def _stdio_session(endpoint: Any, log: Path, *, close_stdin: bool) -> tuple[int, str]:
    with log.open("wb") as err:
        server = await RawServer.start(endpoint, "--log-level", "info", stderr=err.fileno())
        try:
            await server.request(1, "initialize", INITIALIZE)
            assert "result" in await server.response(1, timeout=60)
            await server.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
            await server.request(2, "shutdown", None)
            assert (await server.response(2, timeout=60)).get("result", "missing") is None
            await server.send(frame({"jsonrpc": "2.0", "method": "exit"}))
            if close_stdin:
                assert server.proc.stdin is not None
                server.proc.stdin.close()
            code = await asyncio.wait_for(server.proc.wait(), 60)
        finally:
            await server.close()
    return code, log.read_text(errors="replace")


async def test_stdio_exit_is_clean_20_times_with_stdin_open(model_endpoint: Any, tmp_path: Path) -> None:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(n: int) -> tuple[int, str]:
        async with gate:
            return await _stdio_session(model_endpoint, tmp_path / f"stdio-{n}.log", close_stdin=False)

    outcomes = await asyncio.gather(*(one(n) for n in range(RUNS)), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert not errors, f"{len(errors)}/{RUNS} runs failed: {errors[0]!r}"
    results = [o for o in outcomes if not isinstance(o, BaseException)]
    failures = [(code, err[-1500:]) for code, err in results if code != 0]
    assert not failures, f"{len(failures)}/{RUNS} runs did not exit with 0 (negative = killed by a signal): {failures[0]}"
    for _, err in results:
        assert_quiet(err)


async def test_stdio_exit_is_clean_with_stdin_closed(model_endpoint: Any, tmp_path: Path) -> None:
    code, err = await _stdio_session(model_endpoint, tmp_path / "closed.log", close_stdin=True)
    assert code == 0, err
    assert_quiet(err)


async def test_exit_without_shutdown_is_exit_code_1(model_endpoint: Any) -> None:
    server = await RawServer.start(model_endpoint)
    try:
        await server.request(1, "initialize", INITIALIZE)
        await server.response(1)
        await server.send(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert await asyncio.wait_for(server.proc.wait(), 20) == 1  # LSP: exit without shutdown
    finally:
        await server.close()


async def _spawn_listener(endpoint: Any, flag: str, log: Path) -> tuple[asyncio.subprocess.Process, int]:
    err = log.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "spark_ls", "--log-level", "info", "serve", flag, "127.0.0.1:0",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err, env=server_env(endpoint),
    )
    err.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline and proc.returncode is None:
        found = re.search(r"serving LSP over \w+ on \('127\.0\.0\.1', (\d+)\)", log.read_text(errors="replace"))
        if found:
            return proc, int(found.group(1))
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{flag} server never listened: {log.read_text(errors='replace')}")


class _TcpClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(frame(message))
        await self.writer.drain()

    async def receive(self, msg_id: int) -> dict[str, Any]:
        while True:
            length = 0
            while (line := await self.reader.readline()).strip():
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(await self.reader.readexactly(length))
            if message.get("id") == msg_id and "method" not in message:
                return message


class _WsClient:
    def __init__(self, websocket: Any) -> None:
        self.websocket = websocket

    async def send(self, message: dict[str, Any]) -> None:
        await self.websocket.send(json.dumps(message))

    async def receive(self, msg_id: int) -> dict[str, Any]:
        while True:
            message = json.loads(await self.websocket.recv())
            if message.get("id") == msg_id and "method" not in message:
                return message


async def _session(client: Any) -> None:
    await client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INITIALIZE})
    assert "result" in await client.receive(1)
    await client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    await client.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
    assert (await client.receive(2)).get("result", "missing") is None
    await client.send({"jsonrpc": "2.0", "method": "exit"})


@pytest.mark.parametrize("flag", ["--tcp", "--ws"])
async def test_network_exit_is_clean(model_endpoint: Any, tmp_path: Path, flag: str) -> None:
    log = tmp_path / "server.log"
    proc, port = await _spawn_listener(model_endpoint, flag, log)
    try:
        if flag == "--tcp":
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await _session(_TcpClient(reader, writer))
            code = await asyncio.wait_for(proc.wait(), 20)
            writer.close()
        else:
            from websockets.asyncio.client import connect

            async with connect(f"ws://127.0.0.1:{port}") as websocket:
                await _session(_WsClient(websocket))
                code = await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = log.read_text(errors="replace")
    assert code == 0, err
    assert_quiet(err)


async def test_malformed_message_logs_one_warning_and_no_traceback(model_endpoint: Any, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("wb") as err:
        server = await RawServer.start(model_endpoint, "--log-level", "debug", stderr=err.fileno())
        try:
            await server.request(1, "initialize", INITIALIZE)
            await server.response(1)
            await server.send(frame(raw=b"{not json at all"))
            assert (await server.response(None))["error"]["code"] == -32700
            await server.send(frame({"jsonrpc": "2.0", "id": 3, "method": "textDocument/codeAction", "params": {"x": 1}}))
            assert (await server.response(3))["error"]["code"] == -32602
            await server.request(4, "shutdown", None)
            await server.response(4)
            await server.send(frame({"jsonrpc": "2.0", "method": "exit"}))
            assert await asyncio.wait_for(server.proc.wait(), 20) == 0
        finally:
            await server.close()
    text = log.read_text(errors="replace")
    assert_quiet(text)
    logged = [line for line in text.splitlines() if re.search(r" (WARNING|ERROR|CRITICAL) ", line)]
    assert [line for line in logged if "not valid JSON" in line] and len(logged) == 2, logged
    assert all(" WARNING " in line for line in logged), logged
    assert "unreadable params" in logged[1], logged
