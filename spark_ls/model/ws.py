"""Responses API over WebSocket: a pool of persistent, pre-warmed sockets.

- One in-flight response per socket (the protocol runs responses sequentially); ``pool_size``
  sockets serve parallel work. The session's FIFO gate guarantees a free slot when we are called.
- ``start()`` opens and warms (``generate: false``) every pool socket concurrently, so the first
  actions (an editor's first lightbulb, the first ``--jobs N`` files in CI) pay no handshake;
  concurrent handshakes cost about the wall time of one.
- Sockets are replaced transparently on ``websocket_connection_limit_reached``, on close codes,
  and proactively when older than ``max_connection_age``; idle sockets are closed after
  ``idle_timeout`` and reopened lazily. websockets' own ping/pong keeps them alive meanwhile.
- Continuation: a request of conversation C is chained (``previous_response_id`` + only the task
  message; instructions are always sent) when C's last response is the most recent response of
  the same socket, for the same model, and ``req.context`` is unchanged. Otherwise — or after
  ``previous_response_not_found`` — the full context is sent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    WebSocketException,
)

from spark_ls.config import Settings
from spark_ls.model.transport import (
    ChainBroken,
    ConnectionExpired,
    ConnectionLost,
    DeltaCallback,
    ResponseReader,
    Stats,
    TransportUnavailable,
    backoff_delay,
    error_from_status,
    redact,
    redirect_error,
    responses_body,
    ws_url,
)
from spark_ls.model.types import ModelError, ModelReply, ModelRequest

log = logging.getLogger("spark_ls.model.ws")
# websockets logs request headers (the Authorization header included) at DEBUG level. Give it a
# logger of its own that never enables DEBUG, whatever the application's logging configuration.
_wire_log = logging.getLogger("spark_ls.model.ws.wire")
_wire_log.setLevel(logging.INFO)
_wire_log.propagate = True

OPENAI_BETA = "responses_websockets=2026-02-06"
PING_INTERVAL = 20.0


class _connect_without_redirects(connect):
    """Never follow a redirect: following one would send the Authorization header elsewhere."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class _Socket:
    """One open WebSocket and what the server caches on it."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.opened_at = time.monotonic()
        self.last_used = self.opened_at
        self.last_response_id: str | None = None  # the only id the server's connection cache holds

    @property
    def alive(self) -> bool:
        return self.conn.close_code is None and self.conn.state.name == "OPEN"

    async def request(self, body: dict[str, Any], reader: ResponseReader) -> ModelReply:
        try:
            await self.conn.send(json.dumps({"type": "response.create", **body}))
            while True:
                raw = await self.conn.recv()
                reply = reader.feed(raw)
                if reply is not None:
                    self.last_response_id = reply.response_id
                    self.last_used = time.monotonic()
                    return reply
        except ConnectionClosed as exc:
            raise ConnectionLost(f"the WebSocket closed mid-response (code {exc.rcvd.code if exc.rcvd else 1006})", streamed=reader.streamed) from None
        except (ChainBroken, ModelError):
            # A failed turn evicts the connection's cached id.
            self.last_response_id = None
            raise

    def abort(self) -> None:
        """Drop without a closing handshake: the server abandons whatever it was sending."""
        transport = getattr(self.conn, "transport", None)
        if transport is not None:
            transport.abort()

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.conn.close(), 2.0)
        except (TimeoutError, OSError, WebSocketException):
            self.abort()


@dataclass
class _Chain:
    socket: _Socket
    response_id: str
    model: str
    context: str


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.socket: _Socket | None = None
        self.busy = False
        self.connecting: asyncio.Task[_Socket] | None = None


class WsTransport:
    name = "ws"
    # The original protocol has no cancel event; abandoning the socket is what cancels.
    send_cancel_event = False

    def __init__(self, settings: Settings, stats: Stats) -> None:
        self.settings = settings
        self.stats = stats
        self.url = ws_url(settings.effective_base_url)
        self._secret = settings.api_key.reveal() if settings.api_key else None
        self._slots = [_Slot(i) for i in range(settings.pool_size)]
        self._chains: dict[str, _Chain] = {}
        self._housekeeper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._ssl: ssl.SSLContext | None = None
        if self.url.startswith("wss://"):
            self._ssl = ssl.create_default_context()
            if not settings.tls_verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE

    # ------------------------------------------------------------------ lifecycle

    async def start(self, model: str) -> None:
        """Open and warm every pool socket. Raises TransportUnavailable (caller falls back) or
        ModelError; the session logs the latter and reconnects lazily."""
        results = await asyncio.gather(*(self._ensure(slot, model) for slot in self._slots), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._start_housekeeping()

    async def close(self) -> None:
        self._closed = True
        for task in [self._housekeeper, *self._background]:
            if task is not None:
                task.cancel()
        sockets = [s.socket for s in self._slots if s.socket is not None]
        for slot in self._slots:
            slot.socket = None
        await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)

    @property
    def open_sockets(self) -> int:
        return sum(1 for s in self._slots if s.socket is not None and s.socket.alive)

    # ------------------------------------------------------------------ connections

    def _headers(self) -> dict[str, str]:
        headers = {"OpenAI-Beta": OPENAI_BETA}
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        return headers

    async def _connect(self, model: str) -> _Socket:
        try:
            conn = await _connect_without_redirects(
                self.url,
                additional_headers=self._headers(),
                open_timeout=self.settings.connect_timeout,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_INTERVAL,
                close_timeout=2.0,
                max_size=max(self.settings.max_reply_bytes * 4, 1 << 20),
                # permessage-deflate costs CPU on every frame of both sides; a Responses event is
                # small and the link is usually fast, so it is off unless ws_compression is set.
                compression="deflate" if self.settings.ws_compression else None,
                ssl=self._ssl,
                logger=_wire_log,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 300 <= status < 400:
                raise redirect_error(self.url, exc.response.headers.get("Location")) from None
            if status in (404, 426):
                raise TransportUnavailable(f"WebSocket mode not offered at {self.url} (HTTP {status})", status) from None
            payload = _json_or_none(bytes(exc.response.body or b""))
            headers = exc.response.headers
            err = error_from_status(status, payload, self._secret, retry_after_header=headers.get("retry-after"))
            raise _as_model_error(err) from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise ModelError("network", f"Cannot reach the model endpoint at {self.url}: {redact(_describe(exc), self._secret)}") from None
        self.stats.connections_opened += 1
        socket = _Socket(conn)
        await self._warm(socket, model)
        return socket

    async def _warm(self, socket: _Socket, model: str) -> None:
        body = {"model": model, "input": [], "store": self.settings.store, "generate": False}
        reader = ResponseReader(model, lambda _delta: None, self.settings.max_reply_bytes, self._secret)
        try:
            await asyncio.wait_for(socket.request(body, reader), self.settings.connect_timeout)
        except ModelError as exc:
            if exc.kind == "retired":
                # The model is gone, not the socket: keep the socket; the request will report it.
                return
            socket.abort()
            raise
        except (TimeoutError, ConnectionLost, ConnectionExpired, ChainBroken) as exc:
            socket.abort()
            raise ModelError("network", f"The model endpoint at {self.url} failed the warm-up: {_describe(exc)}") from None
        self.stats.warmups += 1

    async def _ensure(self, slot: _Slot, model: str) -> _Socket:
        """The slot's socket: the current one if healthy, else a fresh warmed one."""
        socket = slot.socket
        if socket is not None:
            age = time.monotonic() - socket.opened_at
            idle = time.monotonic() - socket.last_used
            if socket.alive and age < self.settings.max_connection_age and idle < self.settings.idle_timeout:
                return socket
            slot.socket = None
            self.stats.reconnects += 1
            self._spawn(socket.close())
        if slot.connecting is None:
            task = asyncio.ensure_future(self._connect(model))

            def settled(done: asyncio.Task[_Socket]) -> None:
                # Runs even when the waiter was cancelled, so a finished handshake is never lost.
                slot.connecting = None
                if not done.cancelled() and done.exception() is None:
                    if self._closed:
                        done.result().abort()
                    else:
                        slot.socket = done.result()

            task.add_done_callback(settled)
            slot.connecting = task
        socket = await asyncio.shield(slot.connecting)
        slot.socket = socket
        return socket

    def _retire(self, slot: _Slot, *, abort: bool) -> None:
        socket, slot.socket = slot.socket, None
        if socket is None:
            return
        for key, chain in list(self._chains.items()):
            if chain.socket is socket:
                del self._chains[key]
        if abort:
            socket.abort()
        else:
            self._spawn(socket.close())

    def _replace_in_background(self, slot: _Slot, model: str) -> None:
        async def replace() -> None:
            for attempt in range(3):
                if self._closed or slot.socket is not None or slot.busy:
                    return
                try:
                    await self._ensure(slot, model)
                    return
                except (ModelError, TransportUnavailable):
                    await asyncio.sleep(backoff_delay(attempt))

        self._spawn(replace())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _start_housekeeping(self) -> None:
        if self._housekeeper is None or self._housekeeper.done():
            self._housekeeper = asyncio.ensure_future(self._housekeeping())

    async def _housekeeping(self) -> None:
        """Close idle sockets after idle_timeout; retire sockets near max_connection_age."""
        period = max(0.05, min(30.0, self.settings.idle_timeout / 4, self.settings.max_connection_age / 4))
        while not self._closed:
            await asyncio.sleep(period)
            now = time.monotonic()
            for slot in self._slots:
                socket = slot.socket
                if socket is None or slot.busy:
                    continue
                if not socket.alive or now - socket.last_used >= self.settings.idle_timeout:
                    self._retire(slot, abort=False)
                elif now - socket.opened_at >= self.settings.max_connection_age:
                    self._retire(slot, abort=False)
                    self.stats.reconnects += 1

    # ------------------------------------------------------------------ requests

    def _pick_slot(self, req: ModelRequest) -> _Slot:
        chain = self._chains.get(req.conversation or "")
        free = [s for s in self._slots if not s.busy]
        if not free:  # the session gate makes this unreachable; fail loudly if it is not
            raise ModelError("network", "internal error: no free WebSocket slot")
        if chain is not None:
            for slot in free:
                if slot.socket is chain.socket:
                    return slot
        for slot in free:
            if slot.socket is not None and slot.socket.alive:
                return slot
        return free[0]

    async def complete(self, model: str, req: ModelRequest, on_delta: DeltaCallback) -> ModelReply:
        self._start_housekeeping()
        slot = self._pick_slot(req)
        slot.busy = True
        reader: ResponseReader | None = None
        try:
            fresh_socket_retries = 1
            chain_allowed = True
            while True:
                socket = await self._ensure(slot, model)
                chain = self._chains.get(req.conversation or "") if chain_allowed else None
                previous = None
                if (
                    chain is not None
                    and req.context
                    and chain.socket is socket
                    and chain.response_id == socket.last_response_id
                    and chain.model == model
                    and chain.context == req.context
                ):
                    previous = chain.response_id
                body = responses_body(self.settings, model, req, previous_response_id=previous)
                reader = ResponseReader(model, on_delta, self.settings.max_reply_bytes, self._secret)
                try:
                    reply = await socket.request(body, reader)
                except ChainBroken:
                    chain_allowed = False
                    self.stats.resent_full += 1
                    self._chains.pop(req.conversation or "", None)
                    continue
                except ConnectionExpired:
                    self._retire(slot, abort=False)
                    self.stats.reconnects += 1
                    continue
                except ConnectionLost as exc:
                    self._retire(slot, abort=True)
                    self.stats.reconnects += 1
                    if exc.streamed or fresh_socket_retries == 0:
                        kind = "protocol" if exc.protocol else "network"
                        raise ModelError(kind, f"The model connection failed mid-reply: {exc}.") from None
                    fresh_socket_retries -= 1
                    self.stats.retries += 1
                    log.info("model socket failed before any reply (%s); retrying on a fresh socket", exc)
                    continue
                except ModelError as exc:
                    if exc.kind == "too_large":
                        self._retire(slot, abort=True)  # the server is still sending the rest
                    raise
                if previous is not None:
                    self.stats.chained += 1
                if req.conversation and reply.response_id:
                    self._chains[req.conversation] = _Chain(socket, reply.response_id, model, req.context)
                return reply
        except asyncio.CancelledError:
            # Abandon the response: the socket may still be streaming it, so it cannot be reused.
            if self.send_cancel_event and slot.socket is not None:
                self._spawn(slot.socket.conn.send(json.dumps({"type": "response.cancel"})))
            self._retire(slot, abort=True)
            slot.busy = False
            self._replace_in_background(slot, model)
            raise
        finally:
            slot.busy = False


def _as_model_error(err: Exception) -> Exception:
    if isinstance(err, (ModelError, TransportUnavailable)):
        return err
    return ModelError("protocol", str(err))


def _json_or_none(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text
