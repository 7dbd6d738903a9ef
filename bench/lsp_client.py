"""A minimal JSON-RPC-over-stdio LSP client for benchmarks (no pygls: nothing between the wire and
the stopwatch, and it reads any server's messages, e.g. ruff server's initialize result).

- Content-Length framing on an asyncio subprocess's pipes; integer request ids;
- server -> client requests are answered at once: ``workspace/configuration`` with one ``null`` per
  item, everything else (``window/workDoneProgress/create``, ``client/registerCapability``, ...)
  with a ``null`` result;
- notifications are kept per method with their arrival time (``notifications``), and waiters can
  block on the next one of a method.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import defaultdict
from typing import Any, Self


class LspError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


class RawLspClient:
    def __init__(self, command: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self.notifications: dict[str, list[tuple[float, Any]]] = defaultdict(list)
        self._waiters: dict[str, list[asyncio.Future[Any]]] = defaultdict(list)
        self.server_requests: dict[str, int] = defaultdict(int)
        self.stderr_tail: bytearray = bytearray()

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> Self:
        self.proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env if self.env is not None else dict(os.environ),
            cwd=self.cwd,
            limit=64 * 1024 * 1024,
        )
        self._reader_task = asyncio.create_task(self._read_loop())
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        return self

    async def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.request("shutdown", None), timeout)
            self.notify("exit", None)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        for task in (self._reader_task, self._stderr_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- wire ------------------------------------------------------------------------------------
    def _write(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        body = json.dumps(message, separators=(",", ":")).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def _read_loop(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        reader = self.proc.stdout
        try:
            while True:
                length = None
                while True:
                    line = await reader.readline()
                    if not line:
                        raise EOFError
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length is None:
                    continue
                message = json.loads(await reader.readexactly(length))
                self._dispatch(message)
        except (EOFError, asyncio.IncompleteReadError, ConnectionError):
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(EOFError("server closed its output"))

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self.stderr_tail += chunk
            del self.stderr_tail[:-8192]

    def _dispatch(self, message: dict[str, Any]) -> None:
        now = time.perf_counter()
        method = message.get("method")
        if method is None:  # a response
            future = self._pending.pop(message.get("id"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                if "error" in message and message["error"] is not None:
                    future.set_exception(LspError(message["error"]))
                else:
                    future.set_result(message.get("result"))
            return
        if "id" in message:  # a request from the server: answer at once
            self.server_requests[method] += 1
            result: Any = None
            if method == "workspace/configuration":
                result = [None] * len((message.get("params") or {}).get("items") or [])
            self._write({"jsonrpc": "2.0", "id": message["id"], "result": result})
            return
        self.notifications[method].append((now, message.get("params")))
        for future in self._waiters.pop(method, []):
            if not future.done():
                future.set_result((now, message.get("params")))

    # -- API ---------------------------------------------------------------------------------------
    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def send_request(self, method: str, params: Any) -> tuple[int, asyncio.Future[Any]]:
        self._next_id += 1
        msg_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def request(self, method: str, params: Any) -> Any:
        _, future = self.send_request(method, params)
        return await future

    async def timed_request(self, method: str, params: Any) -> tuple[float, Any]:
        """(milliseconds from writing the request to reading its response, result)."""
        started = time.perf_counter()
        result = await self.request(method, params)
        return (time.perf_counter() - started) * 1000.0, result

    async def wait_notification(self, method: str, timeout: float = 30.0, *, after: float | None = None) -> tuple[float, Any]:
        """The first notification of ``method`` received at or after ``after`` (default: any)."""
        for seen in self.notifications.get(method, []):
            if after is None or seen[0] >= after:
                return seen
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[method].append(future)
        return await asyncio.wait_for(future, timeout)


def client_capabilities(*, progress: bool = True) -> dict[str, Any]:
    """Roughly what VS Code sends for the parts that matter here (UTF-16 positions, resolve, push diagnostics)."""
    return {
        "general": {"positionEncodings": ["utf-16"]},
        "window": {"workDoneProgress": progress, "showMessage": {}},
        "workspace": {"configuration": True, "workspaceFolders": True, "applyEdit": True},
        "textDocument": {
            "synchronization": {"dynamicRegistration": False, "didSave": True},
            "publishDiagnostics": {"relatedInformation": True, "versionSupport": True, "codeDescriptionSupport": True, "dataSupport": True},
            "codeAction": {
                "dynamicRegistration": False,
                "isPreferredSupport": True,
                "disabledSupport": True,
                "dataSupport": True,
                "honorsChangeAnnotations": False,
                "resolveSupport": {"properties": ["edit"]},
                "codeActionLiteralSupport": {
                    "codeActionKind": {
                        "valueSet": ["", "quickfix", "refactor", "refactor.extract", "refactor.inline",
                                     "refactor.rewrite", "source", "source.organizeImports", "source.fixAll"]
                    }
                },
            },
        },
    }
