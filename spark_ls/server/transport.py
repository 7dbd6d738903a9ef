"""JSON-RPC framing and the three transports (stdio, TCP, WebSocket), apart from the server.

- :class:`Framer` turns a byte stream into message bodies (Content-Length framing), resyncing
  after a wrong Content-Length and skipping oversized messages in bounded chunks.
- :class:`Dispatcher` hands each body to pygls, or to a lean handler for the hot methods
  (``textDocument/codeAction``; a hook for ``textDocument/inlineCompletion``): plain JSON in,
  plain JSON out, none of pygls's per-message structuring, futures and context copies. A lean
  answer that says how long it stays valid (:class:`RawResult` with ``replay``) is kept under the
  request's bytes without its id (:class:`Answers`): the same request again is answered from
  there without parsing its JSON.
- ``serve_stdio`` / ``serve_tcp`` / ``serve_ws`` run until the client sends ``exit`` (or goes
  away) and return the process exit code; none of them calls ``sys.exit`` inside the loop.

stdin is read by the event loop (a pipe) or with ``os.read`` on its file descriptor by a daemon
thread, never through ``sys.stdin.buffer``: a daemon thread blocked inside a ``BufferedReader``
holds its lock, and the interpreter aborts (SIGABRT, "could not acquire lock for
<_io.BufferedReader name='<stdin>'>") when it finalises while the editor keeps stdin open after
``exit``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, BinaryIO, Self

from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError

from spark_ls.netloc import is_loopback_host, is_loopback_origin
from spark_ls.server.pygls_compat import (
    DISCARDED,
    MAX_MESSAGE_BYTES,
    Answered,
    SparkProtocol,
    StdoutWriter,
    WebSocketWriter,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request, Response

__all__ = ["MAX_MESSAGE_BYTES", "Answers", "Dispatcher", "Fallback", "Framer", "RawResult", "serve_stdio", "serve_tcp", "serve_ws"]

log = logging.getLogger("spark_ls.server")

_HEADER = b"Content-Length:"
_CONTENT_LENGTH = re.compile(rb"^Content-Length: (\d+)\r\n$")
_HTTP_REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/\d")
_CHUNK = 1 << 16
_LONGEST_HEADER_LINE = 1 << 16  # a "line" longer than this without a newline is not a header


class Framer:
    """Content-Length framing (pygls's rules), fed with chunks of a byte stream.

    - After a message with a wrong Content-Length, the next header arrives glued to leftover
      bytes (``...}Content-Length: 52``): the bytes before the header are dropped, which
      resynchronises the stream.
    - A message above ``max_bytes`` is skipped without being held in memory; if a message header
      turns up inside the bytes being skipped, the length was a lie and reading resumes there.
      A small stand-in message takes its place, whose handler answers with an error.
    """

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._content_length = 0
        self._body_length: int | None = None
        self._skip_headers = False
        self._skip_remaining = 0
        self._skipped_length = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete message bodies ``chunk`` finishes, in order."""
        buf = self._buf
        if not buf and self._body_length is None and not self._content_length and not self._skip_remaining \
                and not self._skip_headers and chunk.startswith(_HEADER):
            # The usual case: the chunk is exactly one message with a bare Content-Length header.
            end = chunk.find(b"\r\n\r\n", len(_HEADER), len(_HEADER) + 24)
            value = chunk[len(_HEADER) + 1 : end] if end > 0 and chunk[len(_HEADER)] == 0x20 else b""
            if value.isdigit() and len(chunk) == end + 4 + int(value) and int(value) <= self.max_bytes:
                return [chunk[end + 4 :]]
        buf = self._buf
        buf += chunk
        out: list[bytes] = []
        while True:
            if self._body_length is not None:
                n = self._body_length
                if len(buf) < n:
                    return out
                out.append(bytes(buf[:n]))
                del buf[:n]
                self._body_length = None
                self._content_length = 0
                continue
            if self._skip_remaining and not self._skip_headers:
                if not self._skip_body():
                    return out
                out.append(self._stand_in())
                continue
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > _LONGEST_HEADER_LINE:  # garbage: keep only what could start a header
                    cut = buf.rfind(_HEADER)
                    del buf[: cut if cut > 0 else len(buf) - len(_HEADER)]
                return out
            line = bytes(buf[: end + 1])
            del buf[: end + 1]
            if self._skip_headers:
                if not line.strip():
                    self._skip_headers = False
                continue
            cut = line.rfind(_HEADER)
            if cut > 0:
                log.warning("discarded %d bytes before a message header (wrong Content-Length?)", cut)
                line = line[cut:]
            if line.startswith(_HEADER):
                value = line[len(_HEADER) :].strip()
                if value.isdigit() and int(value) > self.max_bytes:
                    log.warning("skipping a %s-byte message (the limit is %d bytes)", value.decode(), self.max_bytes)
                    self._skipped_length = self._skip_remaining = int(value)
                    self._skip_headers = True
                    self._content_length = 0
                    continue
            if not self._content_length:
                match = _CONTENT_LENGTH.fullmatch(line)
                if match:
                    self._content_length = int(match.group(1))
            if self._content_length and not line.strip():
                self._body_length = self._content_length

    def _skip_body(self) -> bool:
        """Drop skipped bytes from the buffer; True once the skip is over."""
        buf = self._buf
        window = buf[: self._skip_remaining + len(_HEADER)]
        found = window.find(_HEADER)
        if 0 <= found <= self._skip_remaining:
            del buf[:found]  # a real header: resume reading there
            self._skip_remaining = 0
            return True
        if len(buf) >= self._skip_remaining:
            del buf[: self._skip_remaining]
            self._skip_remaining = 0
            return True
        keep = len(_HEADER) - 1  # a header may straddle the next chunk
        drop = max(0, len(buf) - keep)
        del buf[:drop]
        self._skip_remaining -= drop
        return False

    def _stand_in(self) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "method": DISCARDED, "params": {"bytes": self._skipped_length}}).encode()


class Fallback(Exception):
    """Raised by a lean handler: serve this message through pygls's full path instead."""


class RawResult(bytes):
    """A lean handler's result already serialised as JSON (e.g. kept in an index): sent as is.

    ``replay``, when given, makes the answer reusable for the very same request bytes (any id):
    it is called before each reuse and returns whether the answer still holds (it may also redo
    the answer's side effects, e.g. start a prefetch).
    """

    replay: Callable[[], bool] | None

    def __new__(cls, data: bytes, replay: Callable[[], bool] | None = None) -> Self:
        self = super().__new__(cls, data)
        self.replay = replay
        return self


# A request's id: a JSON integer or a plain printable-ASCII string (anything else is never kept).
# The first match is taken as the key's split; keep() verifies it is the message's own id.
_ID = re.compile(rb'"id"\s*:\s*(-?(?:0|[1-9][0-9]*)|"[\x20\x21\x23-\x5b\x5d-\x7e]*")(?=\s*[,}])')
_PROBE = "\u0000spark-ls-probe"


class Answers:
    """Answers kept under the bytes of their request without its id.

    An editor sends the same codeAction request over and over (cursor moves, lightbulb refreshes)
    with nothing but the id changed. The key is ``(bytes before the id's value, bytes after it)``;
    the split is checked once, when an answer is stored, by parsing the message with a probe in
    place of the id: only a split at the message's own top-level ``id`` is used. Because a later
    request must have exactly the same bytes before the id to match a key, its id sits at the same
    place in the same structure, so a hit needs no JSON parsing at all.
    """

    SIZE = 512
    MAX_REQUEST_BYTES = 32 * 1024  # larger messages (a whole-text didChange) are not searched for an id

    def __init__(self) -> None:
        self._kept: dict[tuple[bytes, bytes], tuple[bytes, Callable[[], bool]]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    @staticmethod
    def split(body: bytes) -> tuple[tuple[bytes, bytes], bytes] | None:
        """(key, the id's JSON token) for a message body, or None when no id is found."""
        if len(body) > Answers.MAX_REQUEST_BYTES:
            return None
        match = _ID.search(body)
        if match is None:
            return None
        return (body[: match.start(1)], body[match.end(1) :]), match.group(1)

    def answer(self, body: bytes) -> bytes | None:
        """The complete response to ``body`` if a kept answer still holds for it."""
        found = self.split(body)
        if found is None:
            return None
        key, msg_id = found
        entry = self._kept.get(key)
        if entry is None:
            return None
        if not entry[1]():
            del self._kept[key]
            return None
        return b'{"jsonrpc":"2.0","id":' + msg_id + b',"result":' + entry[0] + b"}"

    def keep(self, body: bytes, msg_id: int | str, result: bytes, replay: Callable[[], bool]) -> bool:
        """Keep ``result`` for requests equal to ``body`` but for their id (False: not keepable)."""
        found = self.split(body)
        if found is None:
            return False
        key, token = found
        try:
            if json.loads(token) != msg_id or json.loads(key[0] + json.dumps(_PROBE).encode() + key[1]).get("id") != _PROBE:
                return False
        except (ValueError, AttributeError):
            return False
        if len(self._kept) >= self.SIZE:
            self._kept.clear()  # old versions: cheaper to rebuild than to track
        self._kept[key] = (bytes(result), replay)
        return True

    def clear(self) -> None:
        self._kept.clear()


LeanHandler = Callable[[Any], Any]  # params (plain JSON) -> result (plain JSON)


class Dispatcher:
    """Reads one message body and hands it on: lean handler, or pygls."""

    def __init__(self, protocol: SparkProtocol) -> None:
        self.protocol = protocol
        self.lean: dict[str, LeanHandler] = {}
        self.answers = Answers()

    def add_lean(self, method: str, handler: LeanHandler) -> None:
        """Serve requests for ``method`` with ``handler`` (which may raise Fallback)."""
        self.lean[method] = handler

    def handle(self, body: bytes) -> None:
        protocol = self.protocol
        if self.answers and not protocol.shutdown_requested:
            response = self.answers.answer(body)
            if response is not None:
                protocol.send_raw(response)
                return
        try:
            data = json.loads(body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            self._unreadable(JsonRpcParseError.CODE, "not valid JSON", exc)
            return
        if not isinstance(data, dict) or "jsonrpc" not in data:
            self._unreadable(JsonRpcInvalidRequest.CODE, "not a JSON-RPC message", type(data).__name__)
            return
        method = data.get("method")
        if method is not None and "id" in data and not protocol.shutdown_requested:
            lean = self.lean.get(method)
            if lean is not None and self._lean(lean, data, body):
                return
        try:
            message = protocol.structure_message(data)
        except Answered as exc:
            log.warning("answered a request with unreadable params: %s", exc)
            return
        except JsonRpcException as exc:
            self._unreadable(JsonRpcInvalidRequest.CODE, "not a valid LSP message", exc)
            return
        try:
            protocol.handle_message(message)
        except BrokenPipeError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad message must not end the server
            log.warning("could not handle a %r message: %s: %s", method, type(exc).__name__, exc)

    def _lean(self, handler: LeanHandler, data: dict[str, Any], body: bytes) -> bool:
        msg_id = data["id"]
        if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool):
            return False
        try:
            result = handler(data.get("params"))
        except Fallback:
            return False
        except Exception as exc:  # noqa: BLE001 - the full path answers with the proper error
            log.warning("lean %s failed (%s: %s); retrying on the full path", data.get("method"), type(exc).__name__, exc)
            return False
        if isinstance(result, RawResult):
            response = b'{"jsonrpc":"2.0","id":' + json.dumps(msg_id).encode() + b',"result":' + result + b"}"
            if result.replay is not None:
                self.answers.keep(body, msg_id, result, result.replay)
        else:
            response = json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}, separators=(",", ":")).encode()
        self.protocol.send_raw(response)
        return True

    def _unreadable(self, code: int, what: str, detail: object) -> None:
        # JSON-RPC's answer to a message that cannot be read: an error with a null id. The editor
        # is not shown a popup for a protocol problem; one log line, no traceback.
        log.warning("unreadable message (%s): %s", what, detail)
        try:
            self.protocol.send_error(code, f"message {what}: {detail}"[:300])
        except Exception:  # noqa: BLE001 - never fail while reporting a failure
            log.warning("could not send the error response")


class _Stopper:
    """Ends a transport's serve loop once (on exit, or when the client goes away)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: asyncio.Future[None] = loop.create_future()

    def stop(self, *_: object) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def stop_threadsafe(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.stop)
        except RuntimeError:  # the loop is already gone
            pass


def _exit_code(protocol: SparkProtocol) -> int:
    return protocol.exit_code if protocol.exit_code is not None else 0


def _stdin_reader(stdin: BinaryIO | None) -> Callable[[int], bytes]:
    if stdin is None:
        fd = sys.stdin.buffer.fileno()
        return lambda n: os.read(fd, n)
    read1 = getattr(stdin, "read1", None)
    return read1 if read1 is not None else stdin.read


class _PipeReader(asyncio.Protocol):
    """stdin read on the event loop itself (no thread hand-off per message)."""

    def __init__(self, deliver: Callable[[list[bytes]], None], stop: Callable[[], None]) -> None:
        self.framer = Framer()
        self.deliver = deliver
        self.stop = stop

    def data_received(self, data: bytes) -> None:
        bodies = self.framer.feed(data)
        if bodies:
            self.deliver(bodies)

    def eof_received(self) -> bool:
        self.stop()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop()


def serve_stdio(dispatcher: Dispatcher, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Serve LSP on stdin/stdout until ``exit`` or end of input; the exit code.

    When stdin is a pipe (as editors start a server), the event loop reads it directly: a message
    costs no thread hand-off. Otherwise (a file, Windows) one reader thread frames whole messages
    and hands each chunk's bodies to the loop in a single call.
    """
    protocol = dispatcher.protocol
    protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopper = _Stopper(loop)
        protocol.on_exit = stopper.stop

        def deliver(bodies: list[bytes]) -> None:
            for body in bodies:
                if stopper.done.done():
                    return
                dispatcher.handle(body)

        if stdin is None and os.name == "posix":
            pipe = os.fdopen(sys.stdin.buffer.fileno(), "rb", buffering=0, closefd=False)
            try:
                transport, _ = await loop.connect_read_pipe(lambda: _PipeReader(deliver, stopper.stop), pipe)
            except (ValueError, OSError):  # not a pipe, socket or terminal
                pipe.close()
            else:
                try:
                    await stopper.done
                finally:
                    transport.close()
                return
        read = _stdin_reader(stdin)

        def pump() -> None:
            framer = Framer()
            try:
                while chunk := read(_CHUNK):
                    bodies = framer.feed(chunk)
                    if bodies:
                        loop.call_soon_threadsafe(deliver, bodies)
            except (OSError, ValueError) as exc:  # stdin closed under us
                log.info("stdin closed: %s", exc)
            except RuntimeError:  # the loop is already gone
                return
            stopper.stop_threadsafe()

        threading.Thread(target=pump, name="spark-ls-stdin", daemon=True).start()
        await stopper.done

    try:
        asyncio.run(serve())
    except BrokenPipeError:
        log.warning("the client closed the connection; shutting down")
    except KeyboardInterrupt:
        pass
    return _exit_code(protocol)


async def _closed(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, ConnectionError):
        pass


def serve_tcp(dispatcher: Dispatcher, host: str, port: int) -> int:
    """Serve one LSP client over TCP until ``exit`` or disconnect; the exit code.

    A connection opening with an HTTP request line (or closing before sending anything) is
    closed unanswered and does not end the server: a web page can POST to 127.0.0.1:PORT (no
    preflight for text/plain), and its Content-Length header would otherwise frame its body as
    an LSP message.
    """
    protocol = dispatcher.protocol

    async def serve() -> None:
        stopper = _Stopper(asyncio.get_running_loop())
        protocol.on_exit = stopper.stop

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                first = await reader.readline()
            except (OSError, ConnectionError, ValueError):
                first = b""
            if not first or _HTTP_REQUEST_LINE.match(first):
                if first:
                    log.warning("refused an HTTP request on the LSP port: %r", first[:100])
                await _closed(writer)
                return
            protocol.set_writer(writer)  # StreamWriter.write is synchronous, as pygls's Writer
            framer = Framer()
            chunk = first
            try:
                while chunk and not stopper.done.done():
                    for body in framer.feed(chunk):
                        if stopper.done.done():
                            break
                        dispatcher.handle(body)
                    if stopper.done.done():
                        break
                    chunk = await reader.read(_CHUNK)
            except (OSError, ConnectionError) as exc:
                log.info("the client connection ended: %s", exc)
            stopper.stop()
            await _closed(writer)

        server = await asyncio.start_server(connection, host, port)
        addresses = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
        log.info("serving LSP over TCP on %s", addresses)
        async with server:
            await stopper.done

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return _exit_code(protocol)


def serve_ws(dispatcher: Dispatcher, host: str, port: int) -> int:
    """Serve one LSP client over WebSocket until ``exit`` or disconnect; the exit code.

    On a loopback address, a browser page from another site (any Origin that is not
    localhost/127.x/::1) is refused: otherwise any web page the user visits could drive spark-ls
    (and spend their model key) through ws://127.0.0.1.
    """
    from websockets.asyncio.server import serve as ws_serve
    from websockets.exceptions import ConnectionClosed

    protocol = dispatcher.protocol
    guard_origin = is_loopback_host(host)

    def check_origin(connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if guard_origin and origin is not None and not is_loopback_origin(origin):
            log.warning("refused a WebSocket connection from origin %r", origin[:200])
            return connection.respond(HTTPStatus.FORBIDDEN, "spark-ls: connections from web pages are refused\n")
        return None

    async def serve() -> None:
        stopper = _Stopper(asyncio.get_running_loop())
        protocol.on_exit = stopper.stop

        async def connection(websocket: ServerConnection) -> None:
            protocol.set_writer(WebSocketWriter(websocket), include_headers=False)
            try:
                while not stopper.done.done():
                    data = await websocket.recv(decode=False)
                    dispatcher.handle(data if isinstance(data, bytes) else data.encode())
            except ConnectionClosed:
                pass
            stopper.stop()
            await websocket.close()

        server = await ws_serve(connection, host, port, process_request=check_origin)
        addresses = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
        log.info("serving LSP over WebSocket on %s", addresses)
        async with server:
            await stopper.done

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return _exit_code(protocol)
