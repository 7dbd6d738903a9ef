"""HTTP streaming transports on one keep-alive ``httpx.AsyncClient``:
Responses API over SSE (``POST /responses``) and Chat Completions over SSE
(``POST /chat/completions``, the lowest common denominator of local servers).

Neither chains with previous_response_id (``store: false`` keeps nothing server-side between
HTTP requests), so every request carries its full context."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

from spark_ls.config import Settings
from spark_ls.model.transport import (
    ConnectionLost,
    DeltaCallback,
    ResponseReader,
    Stats,
    TransportUnavailable,
    chat_body,
    error_from_status,
    redact,
    redirect_error,
    responses_body,
    too_large,
)
from spark_ls.model.types import ModelError, ModelReply, ModelRequest

log = logging.getLogger("spark_ls.model.http")


def make_client(settings: Settings, stats: Stats | None = None) -> httpx.AsyncClient:
    headers = {"Accept": "text/event-stream, application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key.reveal()}"
    # (tls_verify = false is warned about once, by the session that chose this transport.)

    limits = httpx.Limits(max_connections=max(settings.pool_size, 1) + 2, max_keepalive_connections=max(settings.pool_size, 1))
    timeout = httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout)
    return httpx.AsyncClient(
        base_url=settings.effective_base_url,
        headers=headers,
        verify=settings.tls_verify,
        timeout=timeout,
        limits=limits,
    )


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """(event name, data) per Server-Sent Event; multi-line data joined with newlines."""
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


class _HttpBase:
    name = "http"
    route = ""

    def __init__(self, settings: Settings, stats: Stats, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.stats = stats
        self._secret = settings.api_key.reveal() if settings.api_key else None
        self._client = client or make_client(settings)

    async def start(self, model: str) -> None:
        return None  # the keep-alive connection opens with the first request

    async def close(self) -> None:
        await self._client.aclose()

    async def _post_stream(self, body: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request("POST", self.route, json=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise ModelError("timeout", f"The model endpoint at {self.settings.effective_base_url} did not answer in time.") from None
        except httpx.HTTPError as exc:
            raise ModelError(
                "network", f"Cannot reach the model endpoint at {self.settings.effective_base_url}: {redact(str(exc) or type(exc).__name__, self._secret)}"
            ) from None
        if 300 <= response.status_code < 400:
            await response.aclose()
            raise redirect_error(self.settings.effective_base_url + self.route, response.headers.get("location"))
        if response.status_code >= 400:
            raw = await response.aread()
            await response.aclose()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
            err = error_from_status(
                response.status_code,
                payload if isinstance(payload, dict) else None,
                self._secret,
                retry_after_header=response.headers.get("retry-after"),
            )
            if isinstance(err, (ModelError, TransportUnavailable)):
                raise err
            raise ModelError("protocol", str(err))
        return response


class ResponsesHttpTransport(_HttpBase):
    name = "responses"
    route = "/responses"

    async def complete(self, model: str, req: ModelRequest, on_delta: DeltaCallback) -> ModelReply:
        body = {**responses_body(self.settings, model, req), "stream": True}
        reader = ResponseReader(model, on_delta, self.settings.max_reply_bytes, self._secret)
        response = await self._post_stream(body)
        reply: ModelReply | None = None
        try:
            async for _event, data in sse_events(response):
                if reply is None:
                    reply = reader.feed(data)
                # Read to the end of the body even after response.completed, so the keep-alive
                # connection goes back to the pool instead of being closed.
        except ConnectionLost as exc:
            raise ModelError("protocol", f"The model endpoint sent a malformed stream: {exc}.") from None
        except httpx.HTTPError as exc:
            raise ModelError("network", f"The model stream broke off: {type(exc).__name__}.") from None
        finally:
            await response.aclose()
        if reply is None:
            raise ModelError("network", "The model stream ended before response.completed.")
        return reply


class ChatHttpTransport(_HttpBase):
    name = "chat"
    route = "/chat/completions"

    async def complete(self, model: str, req: ModelRequest, on_delta: DeltaCallback) -> ModelReply:
        response = await self._post_stream(chat_body(model, req))
        parts: list[str] = []
        size = 0
        usage: dict[str, Any] = {}
        reply_model = model
        response_id: str | None = None
        finished = False
        try:
            async for _event, data in sse_events(response):
                if data.strip() == "[DONE]":
                    finished = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise ModelError("protocol", "The model endpoint sent a chat stream chunk that is not JSON.") from None
                if not isinstance(chunk, dict):
                    raise ModelError("protocol", "The model endpoint sent a chat stream chunk that is not an object.")
                if "error" in chunk and isinstance(chunk["error"], dict):
                    err = error_from_status(int(chunk["error"].get("status") or 500), chunk, self._secret)
                    raise err if isinstance(err, ModelError) else ModelError("protocol", str(err))
                response_id = chunk.get("id") or response_id
                reply_model = chunk.get("model") or reply_model
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:  # some servers send choices: null
                    delta = ((choice or {}).get("delta") or {}).get("content") or ""
                    if delta:
                        size += len(delta.encode())
                        if size > self.settings.max_reply_bytes:
                            raise too_large(self.settings.max_reply_bytes)
                        parts.append(delta)
                        on_delta(delta)
                    if (choice or {}).get("finish_reason") == "stop":
                        finished = True  # some servers end the stream without [DONE]
                    if (choice or {}).get("finish_reason") == "length":
                        raise ModelError("too_large", "The model's reply was cut off at max_tokens; ask for a smaller change.")
        except httpx.HTTPError as exc:
            raise ModelError("network", f"The model stream broke off: {type(exc).__name__}.") from None
        finally:
            await response.aclose()
        if not finished:
            raise ModelError("network", "The model stream ended before [DONE].")
        return ModelReply(text="".join(parts), model=str(reply_model), response_id=response_id, usage=dict(usage))
