"""A protocol-faithful fake model endpoint for tests (and benchmarks).

It speaks the real wire protocols (see /work/shared/reference/model-protocols.md) on a real
loopback socket, from a background thread with its own event loop, so it serves in-process async
tests and subprocesses (``spark-ls serve`` under pytest-lsp) alike:

- Responses API WebSocket mode at ``ws://127.0.0.1:PORT/v1/responses`` (Bearer auth checked at
  the upgrade, ``generate: false`` warm-ups, full event sequence with ``sequence_number`` and
  ``usage``, a per-connection ``previous_response_id`` cache, in-band ``error`` events; pings are
  answered, permessage-deflate is offered);
- ``POST /v1/responses`` with ``stream: true`` (SSE, no [DONE]) or without (one JSON body);
- ``POST /v1/chat/completions`` with ``stream: true`` (SSE, ``include_usage`` chunk, ``[DONE]``);
- ``GET /v1/models`` (``shutdown_date`` for models listed in ``shutdown_dates``).

The HTTP side is a small asyncio HTTP/1.1 handler (keep-alive, chunked SSE); the WebSocket side
is the ``websockets`` sans-I/O protocol, so framing, masking, pings and compression are the
library's, not ours.

Usage::

    with ModelEndpoint(api_key="sk-test") as ep:
        ep.replies.append("--- a/x.py\\n+++ b/x.py\\n...")
        settings = Settings(base_url=ep.base_url, api_key=Secret("sk-test"))

Fault knobs (attributes; settable at construction and at run time). A knob with a ``*_times``
companion affects the next N output requests (``None``: every request while the knob is set).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from spark_ls.model_server.http import chunk as _chunk
from spark_ls.model_server.http import error_event as _error_event
from spark_ls.model_server.http import parse_head as _parse_head
from spark_ls.model_server.http import start_sse as _start_sse
from spark_ls.model_server.http import write_json as _write_json

# The fake server's own protocol logger: websockets logs request headers at DEBUG, which would put
# the client's key into caplog and hide leaks that matter (the client's).
_server_log = logging.getLogger("model_endpoint.wire")
_server_log.setLevel(logging.WARNING)

DEFAULT_MODELS = ("gpt-5.3-codex-spark", "gpt-5.3-codex", "gpt-5-mini", "gpt-4.1")
TERMINAL_EVENTS = ("response.completed", "response.failed", "response.incomplete")


@dataclass
class Call:
    """One output request as the endpoint saw it."""

    transport: str  # "ws" | "responses" | "chat"
    body: dict[str, Any]
    connection_id: int
    # Every user-visible text the model would have in context for this turn, chained
    # responses included (so tests can check that continuation lost nothing).
    context_text: str = ""
    outcome: str = "pending"  # completed | error:<code> | dropped | stalled | ...
    deltas: int = 0  # output_text.delta events sent so far


@dataclass
class _WsConnection:
    id: int
    opened_at: float
    protocol: ServerProtocol
    writer: asyncio.StreamWriter
    # response id -> the full context text of that response (input + output so far)
    chain_cache: dict[str, str] = field(default_factory=dict)
    busy: bool = False
    closed: bool = False

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
            elif not self.writer.is_closing():
                self.writer.close()

    def send_event(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        self.protocol.send_text(json.dumps(event).encode())
        self.flush()

    def send_raw_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if self.protocol.state.name == "OPEN":
            self.protocol.send_close(code, reason)
            self.flush()
        self.writer.close()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a network failure, as clients see it)."""
        self.closed = True
        self.writer.transport.abort()


class _Dropped(Exception):
    pass


class ModelEndpoint:
    """A fake model server on 127.0.0.1. See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] | list[str] = DEFAULT_MODELS,
        shutdown_dates: dict[str, str] | None = None,
        retired_models: set[str] | None = None,
        reply_for: Callable[[dict[str, Any]], str] | None = None,
        first_token_delay: float = 0.0,
        tokens_per_second: float | None = None,
        chunk_chars: int = 8,
        drop_after_deltas: int | None = None,
        drop_times: int | None = 1,
        garbage_frames: int = 0,
        garbage_times: int | None = 1,
        unknown_events: int = 0,
        http_status: int | None = None,
        http_status_times: int | None = 1,
        retry_after: float | None = None,
        stall: bool = False,
        stall_times: int | None = None,
        connection_age_limit: float | None = None,
        ws_supported: bool = True,
        ws_reject_status: int = 404,
        latency_range: tuple[float, float] | None = None,
        chat_usage_choices_null: bool = False,
        responses_supported: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        redirect_to: str | None = None,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.models = list(models)
        self.shutdown_dates = dict(shutdown_dates or {})
        self.retired_models = set(retired_models or ())
        self.reply_for = reply_for
        self.replies: deque[str] = deque()
        self.first_token_delay = first_token_delay
        self.tokens_per_second = tokens_per_second
        self.chunk_chars = chunk_chars
        self.drop_after_deltas = drop_after_deltas
        self.drop_times = drop_times
        self.garbage_frames = garbage_frames
        self.garbage_times = garbage_times
        self.unknown_events = unknown_events
        self.http_status = http_status
        self.http_status_times = http_status_times
        self.retry_after = retry_after
        self.stall = stall
        self.stall_times = stall_times
        self.connection_age_limit = connection_age_limit
        self.ws_supported = ws_supported
        self.ws_reject_status = ws_reject_status
        self.latency_range = latency_range
        self.chat_usage_choices_null = chat_usage_choices_null
        self.ssl_context = ssl_context  # serve HTTPS / WSS (benchmarks)
        self.redirect_to = redirect_to  # answer every request with 302 to this base URL
        self.responses_supported = responses_supported  # False: /v1/responses is 404 (a chat-only server)
        # Observations.
        self.calls: list[Call] = []
        self.reply_errors: list[BaseException] = []  # raised again by stop(): the test sees them
        self.warmups = 0
        self.connections_opened = 0  # accepted WebSocket connections
        self.http_connections_opened = 0  # TCP connections that carried plain HTTP
        self.upgrades_rejected = 0
        self.headers_seen: list[dict[str, str]] = []  # one per HTTP request / upgrade, lower-case names
        self.events_sent = 0
        self._ws: dict[int, _WsConnection] = {}
        self._writers: set[asyncio.StreamWriter] = set()
        self._next_connection_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()  # notified on every event a test may wait for
        self.age_limits_sent = 0  # websocket_connection_limit_reached events sent

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ModelEndpoint:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(
                        self._on_connection, self.host, self.port, limit=64 * 1024 * 1024, ssl=self.ssl_context
                    )
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:  # report bind errors to the caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"model-endpoint:{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection. ``start()`` again reuses the same port."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for conn in list(self._ws.values()):
                conn.abort()
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.sleep(0)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(10)
        self._loop = self._thread = self._server = None
        self._ws.clear()
        self._writers.clear()
        if self.reply_errors:
            errors, self.reply_errors = self.reply_errors, []
            raise AssertionError(f"reply_for raised {len(errors)} time(s); first: {errors[0]!r}") from errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ observations

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}/v1/responses"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of the requests that asked for output, in arrival order."""
        return [c.body for c in list(self.calls)]

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_until(self, predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
        """Block until ``predicate()`` holds (checked at every endpoint event); AssertionError naming
        ``what`` after ``timeout`` seconds. From a test's event loop: ``await endpoint.until(...)``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the model endpoint never reached: {what}")
                self._changed.wait(min(left, 0.5))

    async def until(self, predicate: Callable[[], object], what: str, timeout: float = 20.0) -> None:
        """:meth:`wait_until` without blocking the caller's event loop."""
        await asyncio.to_thread(self.wait_until, predicate, what, timeout)

    @property
    def open_connections(self) -> int:
        return sum(1 for c in list(self._ws.values()) if not c.closed)

    def close_all_connections(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every WebSocket from the server side (with a close frame)."""
        if self._loop is None:
            return

        def close() -> None:
            for conn in list(self._ws.values()):
                conn.close(code, reason)

        self._loop.call_soon_threadsafe(close)

    def forget_responses(self) -> None:
        """Evict every cached response id (the next chained request gets previous_response_not_found)."""
        for conn in list(self._ws.values()):
            conn.chain_cache.clear()

    # ------------------------------------------------------------------ faults

    def _take(self, knob_active: bool, times_attr: str) -> bool:
        """Whether a fault applies to this request; consumes one of its ``*_times``."""
        if not knob_active:
            return False
        with self._lock:
            times = getattr(self, times_attr)
            if times is None:
                return True
            if times <= 0:
                return False
            setattr(self, times_attr, times - 1)
            return True

    def _next_reply(self, body: dict[str, Any]) -> str:
        with self._lock:
            if self.replies:
                return self.replies.popleft()
        if self.reply_for is not None:
            try:
                return self.reply_for(body)
            except Exception as exc:  # noqa: BLE001 - a broken test script must not hang the request
                self.reply_errors.append(exc)
                return ""
        return ""

    def _error_for(self, status: int, presented: str = "") -> dict[str, Any]:
        # Like the real service, a 401 echoes the key it was given (clients must redact it).
        kinds = {
            401: ("invalid_request_error", "invalid_api_key", f"Incorrect API key provided: {presented or 'none'}."),
            429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests."),
        }
        etype, code, message = kinds.get(status, ("server_error", "server_error", "The server had an error."))
        if status == 429 and self.retry_after is not None:
            message += f" Please try again in {self.retry_after}s."
        return {"type": etype, "code": code, "message": message, "param": None}

    # ------------------------------------------------------------------ connections

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        counted_http = False
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                method, path, headers = _parse_head(head)
                with self._lock:
                    self.headers_seen.append(dict(headers))
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._serve_websocket(head, path, headers, reader, writer)
                    return
                if not counted_http:
                    counted_http = True
                    self.http_connections_opened += 1
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                keep_alive = await self._serve_http(method, path, headers, body, writer)
                if not keep_alive or headers.get("connection", "").lower() == "close":
                    return
        except _Dropped:
            writer.transport.abort()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.is_closing():
                writer.close()

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        return headers.get("authorization", "") == f"Bearer {self.api_key}"

    # ------------------------------------------------------------------ WebSocket mode

    async def _serve_websocket(
        self,
        head: bytes,
        path: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        protocol = ServerProtocol(extensions=[ServerPerMessageDeflateFactory()], max_size=None, logger=_server_log)
        protocol.receive_data(head)
        requests = [e for e in protocol.events_received() if isinstance(e, WsRequest)]

        def refuse(status: int, text: str, location: str | None = None) -> None:
            self.upgrades_rejected += 1
            response = protocol.reject(status, text)
            if location is not None:
                response.headers["Location"] = location
            protocol.send_response(response)
            for data in protocol.data_to_send():
                if data:
                    writer.write(data)

        if not requests:
            refuse(400, "bad upgrade request")
            return
        if self.redirect_to is not None:
            refuse(302, "Found", self.redirect_to.replace("http", "ws", 1) + "/responses")
            return
        if not self.ws_supported or path.rstrip("/") != "/v1/responses":
            refuse(self.ws_reject_status if not self.ws_supported else 404, "Not Found")
            return
        if not self._authorized(headers):
            refuse(401, json.dumps({"error": self._error_for(401, _presented_key(headers))}))
            return
        response = protocol.accept(requests[0])
        protocol.send_response(response)
        with self._lock:
            self._next_connection_id += 1
            conn_id = self._next_connection_id
            self.connections_opened += 1
        self._notify()
        conn = _WsConnection(conn_id, time.monotonic(), protocol, writer)
        conn.flush()
        if protocol.handshake_exc is not None:
            writer.close()
            return
        self._ws[conn_id] = conn
        messages: asyncio.Queue[str | None] = asyncio.Queue()
        handler = asyncio.create_task(self._ws_handler(conn, messages))
        age_watch = asyncio.create_task(self._ws_age_watch(conn)) if self.connection_age_limit else None
        fragments: list[bytes] = []
        try:
            while not conn.closed:
                data = await reader.read(65536)
                if not data:
                    protocol.receive_eof()
                else:
                    protocol.receive_data(data)
                for event in protocol.events_received():
                    if not isinstance(event, Frame):
                        continue
                    if event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                        fragments.append(event.data)
                        if event.fin:
                            messages.put_nowait(b"".join(fragments).decode("utf-8", "replace"))
                            fragments.clear()
                conn.flush()  # pongs and close replies
                if not data or protocol.close_expected() or protocol.state.name == "CLOSED":
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            conn.closed = True
            messages.put_nowait(None)
            handler.cancel()
            if age_watch is not None:
                age_watch.cancel()
            self._ws.pop(conn_id, None)
            self._notify()
            if not writer.is_closing():
                writer.close()

    async def _ws_age_watch(self, conn: _WsConnection) -> None:
        assert self.connection_age_limit is not None
        await asyncio.sleep(self.connection_age_limit)
        while conn.busy:
            await asyncio.sleep(0.01)
        self._send_age_limit(conn)

    def _send_age_limit(self, conn: _WsConnection) -> None:
        conn.send_event(
            {
                "type": "error",
                "status": 400,
                "error": {
                    "type": "invalid_request_error",
                    "code": "websocket_connection_limit_reached",
                    "message": "Responses websocket connection limit reached (60 minutes). Create a new websocket connection to continue.",
                    "param": None,
                },
            }
        )
        conn.close(1000, "connection limit reached")
        self.age_limits_sent += 1
        self._notify()

    async def _ws_handler(self, conn: _WsConnection, messages: asyncio.Queue[str | None]) -> None:
        # One response at a time per connection: later response.create frames wait their turn.
        while True:
            text = await messages.get()
            if text is None or conn.closed:
                return
            try:
                event = json.loads(text)
            except ValueError:
                conn.send_event(_error_event(400, "invalid_request_error", "invalid_json", "Invalid JSON frame."))
                continue
            if not isinstance(event, dict) or event.get("type") != "response.create":
                if isinstance(event, dict) and event.get("type") == "response.cancel":
                    continue  # nothing in flight while we read sequentially
                conn.send_event(
                    _error_event(400, "invalid_request_error", "unknown_event_type", f"Unknown event type {event.get('type') if isinstance(event, dict) else None!r}.")
                )
                continue
            if self.connection_age_limit is not None and time.monotonic() - conn.opened_at > self.connection_age_limit:
                self._send_age_limit(conn)
                return
            conn.busy = True
            try:
                await self._ws_response(conn, {k: v for k, v in event.items() if k != "type"})
            except _Dropped:
                conn.abort()
                return
            finally:
                conn.busy = False

    async def _ws_response(self, conn: _WsConnection, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        previous = body.get("previous_response_id")
        if body.get("generate") is False:
            self.warmups += 1
            if model in self.retired_models:
                conn.send_event(_model_not_found_event(model))
                return
            response = _response_object(body, "in_progress", [], None)
            for ev in self._stream_events(response, "", deltas=None):
                conn.send_event(ev)
            conn.chain_cache.clear()
            conn.chain_cache[response["id"]] = _context_of(body, "")
            return
        call = Call("ws", body, conn.id)
        with self._lock:
            self.calls.append(call)
        self._notify()
        if self._take(self.http_status is not None, "http_status_times"):
            status = int(self.http_status or 500)
            ev = {"type": "error", "status": status, "error": self._error_for(status)}
            if status == 429 and self.retry_after is not None:
                ev["headers"] = {"retry-after": str(self.retry_after)}
            call.outcome = f"error:{ev['error']['code']}"
            conn.send_event(ev)
            return
        if model in self.retired_models or model not in self.models:
            call.outcome = "error:model_not_found"
            conn.send_event(_model_not_found_event(model))
            return
        prior = ""
        if previous:
            if previous not in conn.chain_cache:
                call.outcome = "error:previous_response_not_found"
                conn.send_event(
                    _error_event(
                        400,
                        "invalid_request_error",
                        "previous_response_not_found",
                        f"Previous response with id '{previous}' not found.",
                        param="previous_response_id",
                    )
                )
                return
            prior = conn.chain_cache[previous]
        call.context_text = prior + _context_of(body, "")
        if self._take(self.stall, "stall_times"):
            call.outcome = "stalled"
            await asyncio.Event().wait()
        await self._before_first_token()
        # The reply is taken before any frame goes out: once the client has seen garbage it may
        # report the failure, and the test may queue the next reply, which this call must not take.
        reply = self._next_reply(body)
        if self._take(self.garbage_frames > 0, "garbage_times"):
            for i in range(self.garbage_frames):
                conn.send_raw_text("<html>502 Bad Gateway</html>" if i % 2 == 0 else "{not json")
        response = _response_object(body, "in_progress", [], None)
        drop_at = self.drop_after_deltas if self._take(self.drop_after_deltas is not None, "drop_times") else None
        cached = len(prior) // 4
        for ev in self._stream_events(response, reply, deltas=drop_at, cached_tokens=cached):
            if ev is _DROP:
                call.outcome = "dropped"
                raise _Dropped()
            if ev.get("type") == "response.output_text.delta":
                call.deltas += 1
                self._notify()
                if self.tokens_per_second:
                    await asyncio.sleep(1.0 / self.tokens_per_second)
            if ev.get("type") in TERMINAL_EVENTS:
                call.outcome = "completed"  # before the client can see it
                # Likewise the chain cache (the most recent response of this connection; a failed
                # turn evicts): a test that reacts to the reply must find it already updated.
                conn.chain_cache.clear()
                conn.chain_cache[response["id"]] = call.context_text + reply
            conn.send_event(ev)
            await asyncio.sleep(0)
        call.outcome = "completed"
        self._notify()

    async def _before_first_token(self) -> None:
        delay = self.first_token_delay
        if self.latency_range is not None:
            delay += random.uniform(*self.latency_range)
        if delay > 0:
            await asyncio.sleep(delay)

    def _stream_events(
        self, response: dict[str, Any], reply: str, *, deltas: int | None, cached_tokens: int = 0
    ) -> Any:
        """The Responses event sequence; yields ``_DROP`` where the connection should die."""
        seq = 0

        def ev(kind: str, **fields: Any) -> dict[str, Any]:
            nonlocal seq
            out = {"type": kind, "sequence_number": seq, **fields}
            seq += 1
            self.events_sent += 1
            return out

        for i in range(self.unknown_events):
            yield ev("response.future_event", note=f"clients must ignore unknown event types ({i})")
        yield ev("response.created", response=_public(response))
        generate = response["_generate"]
        if generate:
            yield ev("response.in_progress", response=_public(response))
            item_id = "msg_" + uuid.uuid4().hex
            item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            yield ev("response.output_item.added", output_index=0, item=item)
            yield ev(
                "response.content_part.added",
                item_id=item_id,
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
            chunks = [reply[i : i + self.chunk_chars] for i in range(0, len(reply), max(1, self.chunk_chars))]
            for n, chunk in enumerate(chunks):
                if deltas is not None and n >= deltas:
                    yield _DROP
                    return
                yield ev(
                    "response.output_text.delta",
                    item_id=item_id,
                    output_index=0,
                    content_index=0,
                    delta=chunk,
                    logprobs=[],
                )
            if deltas is not None and len(chunks) <= deltas:
                yield _DROP
                return
            part = {"type": "output_text", "text": reply, "annotations": []}
            yield ev("response.output_text.done", item_id=item_id, output_index=0, content_index=0, text=reply, logprobs=[])
            yield ev("response.content_part.done", item_id=item_id, output_index=0, content_index=0, part=part)
            done_item = {**item, "status": "completed", "content": [part]}
            yield ev("response.output_item.done", output_index=0, item=done_item)
            output = [done_item]
            usage = _usage(_context_of(response["_body"], ""), reply, cached_tokens)
        else:
            output = []
            usage = _usage("", "", 0)
        final = {**response, "status": "completed", "output": output, "usage": usage}
        yield ev("response.completed", response=_public(final))

    # ------------------------------------------------------------------ HTTP

    async def _serve_http(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        route = path.split("?", 1)[0].rstrip("/")
        if self.redirect_to is not None:
            return await _write_json(writer, 302, {}, {"Location": self.redirect_to + route.removeprefix("/v1")})
        if route == "/v1/models" and method == "GET":
            if not self._authorized(headers):
                return await _write_json(writer, 401, {"error": self._error_for(401)})
            data = []
            for name in self.models:
                if name in self.retired_models:
                    continue
                entry: dict[str, Any] = {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "system"}
                if name in self.shutdown_dates:
                    entry["shutdown_date"] = self.shutdown_dates[name]
                data.append(entry)
            return await _write_json(writer, 200, {"object": "list", "data": data})
        routes = ("/v1/responses", "/v1/chat/completions") if self.responses_supported else ("/v1/chat/completions",)
        if method != "POST" or route not in routes:
            return await _write_json(writer, 404, {"error": {"type": "invalid_request_error", "code": "not_found", "message": f"No route {method} {route}", "param": None}})
        if not self._authorized(headers):
            return await _write_json(writer, 401, {"error": self._error_for(401, _presented_key(headers))})
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return await _write_json(writer, 400, {"error": {"type": "invalid_request_error", "code": "invalid_json", "message": "Invalid JSON body.", "param": None}})
        transport = "chat" if route.endswith("chat/completions") else "responses"
        call = Call(transport, body, 0, context_text=_context_of(body, ""))
        with self._lock:
            self.calls.append(call)
        self._notify()
        if self._take(self.http_status is not None, "http_status_times"):
            status = int(self.http_status or 500)
            extra = {"retry-after": str(self.retry_after)} if status == 429 and self.retry_after is not None else {}
            call.outcome = f"error:{status}"
            return await _write_json(writer, status, {"error": self._error_for(status)}, extra)
        model = str(body.get("model", ""))
        if model in self.retired_models or model not in self.models:
            call.outcome = "error:model_not_found"
            return await _write_json(writer, 404, {"error": _model_not_found_event(model)["error"]})
        if body.get("previous_response_id"):
            # HTTP with store: false keeps nothing between requests.
            call.outcome = "error:previous_response_not_found"
            return await _write_json(writer, 400, {"error": _error_event(400, "invalid_request_error", "previous_response_not_found", f"Previous response with id '{body['previous_response_id']}' not found.", param="previous_response_id")["error"]})
        if self._take(self.stall, "stall_times"):
            call.outcome = "stalled"
            await asyncio.Event().wait()
        await self._before_first_token()
        reply = self._next_reply(body)
        drop_at = self.drop_after_deltas if self._take(self.drop_after_deltas is not None, "drop_times") else None
        garbage = self.garbage_frames if self._take(self.garbage_frames > 0, "garbage_times") else 0
        if transport == "chat":
            return await self._chat(body, reply, writer, call, drop_at, garbage)
        response = _response_object(body, "in_progress", [], None)
        if not body.get("stream"):
            final = None
            for ev in self._stream_events(response, reply, deltas=None):
                final = ev
            call.outcome = "completed"
            return await _write_json(writer, 200, final["response"])
        await _start_sse(writer)
        for _ in range(garbage):
            await _chunk(writer, b"data: {not json\n\n")
        for ev in self._stream_events(response, reply, deltas=drop_at):
            if ev is _DROP:
                call.outcome = "dropped"
                raise _Dropped()
            if ev.get("type") == "response.output_text.delta" and self.tokens_per_second:
                await asyncio.sleep(1.0 / self.tokens_per_second)
            if ev.get("type") in TERMINAL_EVENTS:
                call.outcome = "completed"
            await _chunk(writer, f"event: {ev['type']}\ndata: {json.dumps(ev)}\n\n".encode())
        await _chunk(writer, b"")
        call.outcome = "completed"
        return True

    async def _chat(
        self,
        body: dict[str, Any],
        reply: str,
        writer: asyncio.StreamWriter,
        call: Call,
        drop_at: int | None,
        garbage: int,
    ) -> bool:
        chat_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        model = body.get("model", "")
        prompt_text = _chat_text(body)
        usage = {
            "prompt_tokens": max(1, len(prompt_text) // 4),
            "completion_tokens": max(0, len(reply) // 4),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            call.outcome = "completed"
            return await _write_json(
                writer,
                200,
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                    "usage": usage,
                },
            )

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj = {
                "id": chat_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(obj)}\n\n".encode()

        await _start_sse(writer)
        for _ in range(garbage):
            await _chunk(writer, b"data: {not json\n\n")
        await _chunk(writer, chunk({"role": "assistant", "content": ""}, None))
        pieces = [reply[i : i + self.chunk_chars] for i in range(0, len(reply), max(1, self.chunk_chars))]
        for n, piece in enumerate(pieces):
            if drop_at is not None and n >= drop_at:
                call.outcome = "dropped"
                raise _Dropped()
            if self.tokens_per_second:
                await asyncio.sleep(1.0 / self.tokens_per_second)
            await _chunk(writer, chunk({"content": piece}, None))
        if drop_at is not None:
            call.outcome = "dropped"
            raise _Dropped()
        call.outcome = "completed"
        await _chunk(writer, chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            obj = {
                "id": chat_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": None if self.chat_usage_choices_null else [],
                "usage": usage,
            }
            await _chunk(writer, f"data: {json.dumps(obj)}\n\n".encode())
        await _chunk(writer, b"data: [DONE]\n\n")
        await _chunk(writer, b"")
        call.outcome = "completed"
        return True


_DROP: Any = object()


# ---------------------------------------------------------------------- wire helpers


def _presented_key(headers: dict[str, str]) -> str:
    return headers.get("authorization", "").removeprefix("Bearer ").strip()














def _model_not_found_event(model: str) -> dict[str, Any]:
    return _error_event(404, "invalid_request_error", "model_not_found", f"The model `{model}` does not exist or you do not have access to it.", param="model")


def input_text(value: Any) -> str:
    """The user-visible text of a Responses ``input`` (string or list of items)."""
    if isinstance(value, str):
        return value
    out: list[str] = []
    for item in value or []:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(out)


def _chat_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))


def _context_of(body: dict[str, Any], reply: str) -> str:
    if "messages" in body:
        return _chat_text(body) + reply
    return str(body.get("instructions") or "") + "\n" + input_text(body.get("input")) + reply


def _usage(input_str: str, reply: str, cached: int) -> dict[str, Any]:
    input_tokens = len(input_str) // 4 + cached
    output_tokens = len(reply) // 4
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _response_object(body: dict[str, Any], status: str, output: list[Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_" + uuid.uuid4().hex,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model", ""),
        "instructions": body.get("instructions"),
        "output": output,
        "usage": usage,
        "error": None,
        "incomplete_details": None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "metadata": {},
        "store": bool(body.get("store", True)),
        "previous_response_id": body.get("previous_response_id"),
        "max_output_tokens": body.get("max_output_tokens"),
        "_generate": body.get("generate", True) is not False,
        "_body": body,
    }


def _public(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if not k.startswith("_")}
