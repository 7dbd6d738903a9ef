"""``spark-ls model-server``: the embedded local model behind the Responses protocol, so editor
windows and CI jobs share one loaded model.

Serves, on one port:
- Responses WebSocket mode at ``/v1/responses`` (``generate: false`` warm-ups, the full event
  sequence, in-band ``error`` events, a per-connection ``previous_response_id`` cache);
- ``POST /v1/responses`` (SSE with ``stream: true``, else one JSON response);
- ``POST /v1/chat/completions`` (SSE or JSON) and ``GET /v1/models``.

Chaining: the backend is stateless per turn, so a chained request is answered with the previous
turn's *context* (every user message but the last) plus the new input — exactly what the
spark-ls client relies on when it chains (it only chains when the context is unchanged).

The HTTP side is a small asyncio HTTP/1.1 handler (keep-alive, chunked SSE); WebSocket framing,
pings and compression are the ``websockets`` sans-I/O protocol's. Loopback only unless
``allow_remote`` — there is no authentication.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from spark_ls.config import Settings
from spark_ls.model.types import ModelError, ModelReply, ModelRequest
from spark_ls.model_server.http import chunk as _chunk
from spark_ls.model_server.http import error_body as _error_body
from spark_ls.model_server.http import error_event as _error_event
from spark_ls.model_server.http import parse_head as _parse_head
from spark_ls.model_server.http import start_sse as _start_sse
from spark_ls.model_server.http import write_json as _write_json
from spark_ls.netloc import is_loopback_host, is_loopback_origin

log = logging.getLogger("spark_ls.model_server")
_wire_log = logging.getLogger("spark_ls.model_server.wire")
_wire_log.setLevel(logging.INFO)  # websockets logs request headers at DEBUG

_MAX_HEAD = 64 * 1024
_MAX_BODY = 32 * 1024 * 1024


class Backend(Protocol):
    name: str

    async def start(self) -> None: ...

    async def complete(self, req: ModelRequest, on_delta: Callable[[str], None] | None = None) -> ModelReply: ...

    async def close(self) -> None: ...






async def serve_model_server(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    backend: Backend | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until cancelled. ``ready(base_url)`` is called once listening (port 0 picks one)."""
    if not allow_remote and not is_loopback_host(host):
        raise ModelError(
            "config",
            f"Refusing to serve the model on non-loopback address {host!r}: the model server has no "
            "authentication. Pass --allow-remote if you really want that.",
        )
    if backend is None:
        from spark_ls.model.local import (
            LocalModel,  # heavy optional runtime: import on use
        )

        backend = LocalModel(settings)
    await backend.start()
    server = _ModelServer(backend)
    listener = await asyncio.start_server(server.on_connection, host, port, limit=_MAX_HEAD)
    bound = listener.sockets[0].getsockname()
    base_url = f"http://{host if ':' not in host else '[' + host + ']'}:{bound[1]}/v1"
    log.info("model server for %s listening on %s", backend.name, base_url)
    if ready is not None:
        ready(base_url)
    try:
        async with listener:
            await listener.serve_forever()
    finally:
        await server.close_all()
        await backend.close()


class _ModelServer:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.tasks: set[asyncio.Task[Any]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def close_all(self) -> None:
        for writer in list(self.writers):
            writer.transport.abort()

    async def on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                method, path, headers = _parse_head(head)
                origin = headers.get("origin")
                if origin is not None and not is_loopback_origin(origin):
                    # A web page in the user's browser may not drive the local model (browsers
                    # send Origin on cross-site WebSocket upgrades and POSTs; real clients don't).
                    log.warning("refused a request from a web page (Origin: %s)", origin[:100])
                    await _write_json(writer, 403, _error_body("invalid_request_error", "forbidden_origin", "Requests from web pages are not allowed."))
                    return
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._websocket(head, path, reader, writer)
                    return
                length = int(headers.get("content-length") or 0)
                if length > _MAX_BODY:
                    await _write_json(writer, 400, _error_body("invalid_request_error", "too_large", "Request body too large."))
                    return
                body = await reader.readexactly(length) if length else b""
                await self._http(method, path.split("?", 1)[0].rstrip("/"), body, writer)
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            if not writer.is_closing():
                writer.close()

    # ------------------------------------------------------------------ turns

    def _request_from(self, body: dict[str, Any], previous_context: str | None) -> ModelRequest:
        texts = _user_texts(body.get("input"))
        task = texts[-1] if texts else ""
        context = "\n".join(texts[:-1])
        if previous_context is not None and not context:
            context = previous_context
        max_tokens = body.get("max_output_tokens")
        return ModelRequest(
            instructions=str(body.get("instructions") or ""),
            input=task,
            context=context,
            max_output_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
        )

    async def _generate(
        self, body: dict[str, Any], previous_context: str | None, send: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> tuple[str, ModelRequest] | None:
        """Run one turn, sending every Responses event through ``send``; None on failure."""
        model = str(body.get("model") or self.backend.name)
        stream = _EventStream(model, body)
        await send(stream.created())
        if body.get("generate") is False:
            await send(stream.completed("", {}))
            return "", self._request_from(body, previous_context)
        await send(stream.in_progress())
        for event in stream.open_item():
            await send(event)
        req = self._request_from(body, previous_context)
        queue: asyncio.Queue[str] = asyncio.Queue()
        try:
            work = asyncio.ensure_future(self.backend.complete(req, on_delta=queue.put_nowait))
            while not work.done() or not queue.empty():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    await send(stream.delta(getter.result()))
                else:
                    getter.cancel()
            reply = work.result()
        except ModelError as exc:
            await send(stream.failed(exc.message))
            return None
        except asyncio.CancelledError:
            work.cancel()
            raise
        text = reply.text
        for event in stream.close_item(text):
            await send(event)
        await send(stream.completed(text, reply.usage))
        return text, req

    # ------------------------------------------------------------------ WebSocket

    async def _websocket(self, head: bytes, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        protocol = ServerProtocol(extensions=[ServerPerMessageDeflateFactory()], max_size=_MAX_BODY, logger=_wire_log)
        protocol.receive_data(head)
        requests = [e for e in protocol.events_received() if isinstance(e, WsRequest)]

        def flush() -> None:
            for data in protocol.data_to_send():
                if data:
                    writer.write(data)
                elif not writer.is_closing():
                    writer.close()

        if not requests or path.split("?", 1)[0].rstrip("/") != "/v1/responses":
            protocol.send_response(protocol.reject(404, "Not Found"))
            flush()
            return
        protocol.send_response(protocol.accept(requests[0]))
        flush()
        if protocol.handshake_exc is not None:
            return
        inbox: asyncio.Queue[str | None] = asyncio.Queue()
        turns = asyncio.ensure_future(self._ws_turns(protocol, flush, writer, inbox))
        fragments: list[bytes] = []
        try:
            while True:
                data = await reader.read(65536)
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                for event in protocol.events_received():
                    if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                        fragments.append(bytes(event.data))
                        if event.fin:
                            inbox.put_nowait(b"".join(fragments).decode("utf-8", "replace"))
                            fragments.clear()
                flush()
                if not data or protocol.close_expected():
                    break
        except ConnectionError:
            pass
        finally:
            inbox.put_nowait(None)
            turns.cancel()  # the client left: abandon its generation

    async def _ws_turns(
        self,
        protocol: ServerProtocol,
        flush: Callable[[], None],
        writer: asyncio.StreamWriter,
        inbox: asyncio.Queue[str | None],
    ) -> None:
        last: tuple[str, str] | None = None  # (response id, context): the connection-local cache

        async def send(event: dict[str, Any]) -> None:
            if writer.is_closing():
                raise ConnectionError("client gone")
            protocol.send_text(json.dumps(event).encode())
            flush()
            await writer.drain()

        while True:
            text = await inbox.get()
            if text is None:
                return
            try:
                message = json.loads(text)
            except ValueError:
                await send(_error_event(400, "invalid_request_error", "invalid_json", "Invalid JSON frame."))
                continue
            if not isinstance(message, dict) or message.get("type") != "response.create":
                kind = message.get("type") if isinstance(message, dict) else None
                if kind != "response.cancel":
                    await send(_error_event(400, "invalid_request_error", "unknown_event_type", f"Unknown event type {kind!r}."))
                continue
            body = {k: v for k, v in message.items() if k != "type"}
            previous = body.get("previous_response_id")
            previous_context: str | None = None
            if previous:
                if last is None or last[0] != previous:
                    await send(
                        _error_event(400, "invalid_request_error", "previous_response_not_found", f"Previous response with id '{previous}' not found.", param="previous_response_id")
                    )
                    continue
                previous_context = last[1]
            sent: dict[str, Any] = {}

            async def send_and_note(event: dict[str, Any], sent: dict[str, Any] = sent) -> None:
                if event["type"] == "response.created":
                    sent["id"] = event["response"]["id"]
                await send(event)

            try:
                result = await self._generate(body, previous_context, send_and_note)
            except ConnectionError:
                return
            last = (sent["id"], result[1].context) if result is not None else None

    # ------------------------------------------------------------------ HTTP

    async def _http(self, method: str, route: str, raw: bytes, writer: asyncio.StreamWriter) -> None:
        if route == "/v1/models" and method == "GET":
            entry = {"id": self.backend.name, "object": "model", "created": 0, "owned_by": "spark-ls"}
            await _write_json(writer, 200, {"object": "list", "data": [entry]})
            return
        if method != "POST" or route not in ("/v1/responses", "/v1/chat/completions"):
            await _write_json(writer, 404, _error_body("invalid_request_error", "not_found", f"No route {method} {route}"))
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            await _write_json(writer, 400, _error_body("invalid_request_error", "invalid_json", "Invalid JSON body."))
            return
        if route == "/v1/chat/completions":
            await self._chat(body, writer)
            return
        if body.get("previous_response_id"):
            await _write_json(
                writer, 400, _error_body("invalid_request_error", "previous_response_not_found", "Previous responses are not kept over HTTP.")
            )
            return
        if not body.get("stream"):
            events: list[dict[str, Any]] = []

            async def collect(event: dict[str, Any]) -> None:
                events.append(event)

            await self._generate(body, None, collect)
            await _write_json(writer, 200, events[-1]["response"])
            return
        await _start_sse(writer)

        async def send(event: dict[str, Any]) -> None:
            await _chunk(writer, f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        await self._generate(body, None, send)
        await _chunk(writer, b"")

    async def _chat(self, body: dict[str, Any], writer: asyncio.StreamWriter) -> None:
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        system = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer"))
        users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        req = ModelRequest(
            instructions=system,
            input=users[-1] if users else "",
            context="\n".join(users[:-1]),
            max_output_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
        )
        chat_id = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        model = str(body.get("model") or self.backend.name)

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj = {"id": chat_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(obj)}\n\n".encode()

        if not body.get("stream"):
            try:
                reply = await self.backend.complete(req)
            except ModelError as exc:
                await _write_json(writer, 500, _error_body("server_error", "model_error", exc.message))
                return
            await _write_json(writer, 200, {
                "id": chat_id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}],
                "usage": _chat_usage(reply.usage),
            })
            return
        await _start_sse(writer)
        await _chunk(writer, chunk({"role": "assistant", "content": ""}, None))
        pending: list[asyncio.Future[None]] = []

        def on_delta(text: str) -> None:
            pending.append(asyncio.ensure_future(_chunk(writer, chunk({"content": text}, None))))

        try:
            reply = await self.backend.complete(req, on_delta=on_delta)
        except ModelError as exc:
            await asyncio.gather(*pending)
            error = {"error": {"message": exc.message, "type": "server_error", "code": "model_error"}}
            await _chunk(writer, f"data: {json.dumps(error)}\n\n".encode())
            await _chunk(writer, b"")
            return
        await asyncio.gather(*pending)
        await _chunk(writer, chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            obj = {"id": chat_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [], "usage": _chat_usage(reply.usage)}
            await _chunk(writer, f"data: {json.dumps(obj)}\n\n".encode())
        await _chunk(writer, b"data: [DONE]\n\n")
        await _chunk(writer, b"")


class _EventStream:
    """Builds one response's events with consecutive sequence numbers."""

    def __init__(self, model: str, body: dict[str, Any]) -> None:
        self.seq = 0
        self.item_id = "msg_" + uuid.uuid4().hex
        self.response: dict[str, Any] = {
            "id": "resp_" + uuid.uuid4().hex,
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": model,
            "instructions": body.get("instructions"),
            "output": [],
            "usage": None,
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
            "temperature": 0.0,
            "top_p": 1.0,
            "metadata": {},
            "store": bool(body.get("store", False)),
            "previous_response_id": body.get("previous_response_id"),
            "max_output_tokens": body.get("max_output_tokens"),
        }

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def created(self) -> dict[str, Any]:
        return self._event("response.created", response=dict(self.response))

    def in_progress(self) -> dict[str, Any]:
        return self._event("response.in_progress", response=dict(self.response))

    def _item(self, status: str, text: str | None) -> dict[str, Any]:
        content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def open_item(self) -> list[dict[str, Any]]:
        return [
            self._event("response.output_item.added", output_index=0, item=self._item("in_progress", None)),
            self._event("response.content_part.added", item_id=self.item_id, output_index=0, content_index=0,
                        part={"type": "output_text", "text": "", "annotations": []}),
        ]

    def delta(self, text: str) -> dict[str, Any]:
        return self._event("response.output_text.delta", item_id=self.item_id, output_index=0, content_index=0, delta=text, logprobs=[])

    def close_item(self, text: str) -> list[dict[str, Any]]:
        part = {"type": "output_text", "text": text, "annotations": []}
        return [
            self._event("response.output_text.done", item_id=self.item_id, output_index=0, content_index=0, text=text, logprobs=[]),
            self._event("response.content_part.done", item_id=self.item_id, output_index=0, content_index=0, part=part),
            self._event("response.output_item.done", output_index=0, item=self._item("completed", text)),
        ]

    def completed(self, text: str, usage: dict[str, Any]) -> dict[str, Any]:
        output = [self._item("completed", text)] if text else []
        final = {**self.response, "status": "completed", "output": output, "usage": _responses_usage(usage)}
        return self._event("response.completed", response=final)

    def failed(self, message: str) -> dict[str, Any]:
        final = {**self.response, "status": "failed", "error": {"code": "server_error", "message": message}}
        return self._event("response.failed", response=final)


def _responses_usage(usage: dict[str, Any]) -> dict[str, Any]:
    input_tokens = int(usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0)
    output_tokens = int(usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": int((usage.get("input_tokens_details") or {}).get("cached_tokens", 0) or 0)},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _chat_usage(usage: dict[str, Any]) -> dict[str, int]:
    r = _responses_usage(usage)
    return {"prompt_tokens": r["input_tokens"], "completion_tokens": r["output_tokens"], "total_tokens": r["total_tokens"]}


def _user_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    texts: list[str] = []
    for item in value or []:
        if not isinstance(item, dict) or item.get("role", "user") not in ("user", "developer", "system"):
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.append("".join(str(p.get("text", "")) for p in content if isinstance(p, dict)))
    return texts
