"""A `spark-ls serve` subprocess spoken to in raw JSON-RPC bytes (for malformed-input and
shutdown tests, where pytest-lsp's client would refuse or rewrite what is sent)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from lsp_helpers import server_env


def frame(obj: Any = None, *, raw: bytes | None = None, length: int | None = None) -> bytes:
    body = raw if raw is not None else json.dumps(obj).encode()
    return f"Content-Length: {len(body) if length is None else length}\r\n\r\n".encode() + body


class RawServer:
    """A `spark-ls serve` subprocess spoken to in bytes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.inbox: list[dict[str, Any]] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, endpoint: Any, *args: str, stderr: int = asyncio.subprocess.DEVNULL) -> RawServer:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "spark_ls", *args, "serve",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            env=server_env(endpoint),
        )
        return cls(proc)

    async def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = await out.readline()
                if not line:
                    return
                if not line.strip():
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None
            self.inbox.append(json.loads(await out.readexactly(length)))

    async def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def request(self, id_: int, method: str, params: Any) -> None:
        await self.send(frame({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}))

    async def response(self, id_: Any, timeout: float = 15) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for message in self.inbox:
                if "method" not in message and message.get("id") == id_:
                    self.inbox.remove(message)
                    return message
            if loop.time() > deadline or self._reader.done():
                raise AssertionError(f"no response for id {id_!r}; received {self.inbox}")
            await asyncio.sleep(0.01)

    async def initialize_and_open(self, root: Any, uri: str, text: str, *, progress: bool = False) -> None:
        """initialize (an editor with resolvable quick fixes; ``progress``: workDoneProgress),
        initialized, then didOpen ``uri`` as Python version 1."""
        capabilities: dict[str, Any] = {
            "textDocument": {"codeAction": {"dataSupport": True, "resolveSupport": {"properties": ["edit"]},
                                            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix"]}}}}}
        if progress:
            capabilities["window"] = {"workDoneProgress": True}
        await self.request(0, "initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": capabilities})
        await self.response(0)
        await self.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        await self.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}}))

    async def alive(self, id_: int) -> None:
        """A well-formed request still gets its answer."""
        await self.request(id_, "textDocument/codeAction", {
            "textDocument": {"uri": "file:///never-opened.py"},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": []},
        })
        assert (await self.response(id_)) == {"jsonrpc": "2.0", "id": id_, "result": None}
        assert self.proc.returncode is None

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()
