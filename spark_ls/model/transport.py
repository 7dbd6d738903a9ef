"""What every transport shares: request bodies, the Responses event reader, error mapping,
redaction and backoff. Transports raise :class:`ModelError` (user-facing) or one of the internal
signals below, which the pool/session turn into a reconnect, a resend or a fallback."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from spark_ls.config import Settings
from spark_ls.model.types import ModelError, ModelReply, ModelRequest

DeltaCallback = Callable[[str], None]
KEY_ENV_VAR = "OPENAI_API_KEY"
# json.loads without its per-call argument handling: the event reader decodes every frame.
_decode = json.JSONDecoder().decode


class ConnectionLost(Exception):
    """The socket died (or sent garbage) mid-request; ``streamed`` says whether text reached the caller."""

    def __init__(self, message: str, *, streamed: bool, protocol: bool = False) -> None:
        super().__init__(message)
        self.streamed = streamed
        self.protocol = protocol


class ChainBroken(Exception):
    """previous_response_not_found: resend the full context."""


class ConnectionExpired(Exception):
    """websocket_connection_limit_reached: open a fresh socket and send again."""


class TransportUnavailable(Exception):
    """This endpoint does not offer the transport (WebSocket upgrade 404/426, HTTP route 404)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Stats:
    connections_opened: int = 0
    requests: int = 0
    retries: int = 0
    reconnects: int = 0
    warmups: int = 0
    fallbacks: int = 0
    chained: int = 0
    resent_full: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        out.update(self.extra)
        return out


class Transport(Protocol):
    name: str

    async def start(self, model: str) -> None: ...

    async def complete(self, model: str, req: ModelRequest, on_delta: DeltaCallback) -> ModelReply: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------------- request bodies


def user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def input_items(req: ModelRequest, *, chained: bool) -> list[dict[str, Any]]:
    """The Responses ``input``: the stable context (if any) then the task. A chained request sends
    only the task: the model already holds the same context from the previous turn."""
    context = getattr(req, "context", "") or ""
    if chained or not context:
        return [user_message(req.input)]
    return [user_message(context), user_message(req.input)]


def responses_body(
    settings: Settings, model: str, req: ModelRequest, *, previous_response_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "instructions": req.instructions,
        "input": input_items(req, chained=previous_response_id is not None),
        "store": settings.store,
    }
    if previous_response_id is not None:
        body["previous_response_id"] = previous_response_id
    if req.max_output_tokens is not None:
        body["max_output_tokens"] = req.max_output_tokens
    return body


def chat_body(model: str, req: ModelRequest) -> dict[str, Any]:
    context = getattr(req, "context", "") or ""
    user = f"{context}\n\n{req.input}" if context else req.input
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": req.instructions}, {"role": "user", "content": user}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if req.max_output_tokens is not None:
        body["max_tokens"] = req.max_output_tokens
    return body


# ---------------------------------------------------------------------- Responses event stream


class ResponseReader:
    """Consumes Responses streaming events (WebSocket frames or SSE data) for one response."""

    def __init__(self, model: str, on_delta: DeltaCallback, max_reply_bytes: int, secret: str | None) -> None:
        self.model = model
        self.on_delta = on_delta
        self.max_reply_bytes = max_reply_bytes
        self.secret = secret
        self.parts: list[str] = []
        self.size = 0
        self.response_id: str | None = None
        self.streamed = False

    def feed(self, raw: str | bytes) -> ModelReply | None:
        """One event; returns the reply at ``response.completed``. Raises on errors."""
        try:
            event = _decode(raw if isinstance(raw, str) else raw.decode())
        except ValueError:
            raise ConnectionLost("the model endpoint sent a frame that is not JSON", streamed=self.streamed, protocol=True) from None
        if not isinstance(event, dict):
            raise ConnectionLost("the model endpoint sent a frame that is not a JSON object", streamed=self.streamed, protocol=True)
        kind = event.get("type")
        if kind == "response.created":
            self.response_id = (event.get("response") or {}).get("id")
        elif kind == "response.output_text.delta":
            delta = str(event.get("delta") or "")
            self._add(delta)
        elif kind == "response.output_text.done" and not self.parts:
            self._add(str(event.get("text") or ""))
        elif kind == "response.completed":
            response = event.get("response") or {}
            text = "".join(self.parts)
            if not text:
                text = _output_text(response.get("output") or [])
                if len(text.encode()) > self.max_reply_bytes:
                    raise too_large(self.max_reply_bytes)
            return ModelReply(
                text=text,
                model=str(response.get("model") or self.model),
                response_id=response.get("id") or self.response_id,
                usage=dict(response.get("usage") or {}),
            )
        elif kind in ("response.failed", "response.incomplete"):
            response = event.get("response") or {}
            if kind == "response.incomplete":
                reason = (response.get("incomplete_details") or {}).get("reason", "unknown")
                if reason == "max_output_tokens":
                    raise ModelError("too_large", "The model's reply was cut off at max_output_tokens; ask for a smaller change.")
                raise ModelError("protocol", f"The model stopped early (reason: {redact(str(reason), self.secret)}).")
            err = response.get("error") or {}
            raise ModelError("server", "The model failed to answer: " + redact(str(err.get("message") or "unknown error"), self.secret))
        elif kind == "error":
            raise error_from_event(event, self.secret)
        # Anything else (in_progress, item/part bookkeeping, future event types) needs no action.
        return None

    def _add(self, delta: str) -> None:
        if not delta:
            return
        self.size += len(delta.encode())
        if self.size > self.max_reply_bytes:
            raise too_large(self.max_reply_bytes)
        self.parts.append(delta)
        self.streamed = True
        self.on_delta(delta)


def _output_text(output: list[Any]) -> str:
    texts: list[str] = []
    for item in output:
        if isinstance(item, dict):
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
    return "".join(texts)


def too_large(limit: int) -> ModelError:
    return ModelError("too_large", f"The model's reply exceeded max_reply_bytes ({limit} bytes); it was abandoned.")


# ---------------------------------------------------------------------- errors


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+)")
_RETRY_IN = re.compile(r"try again in\s+([0-9.]+)\s*(ms|s)\b", re.IGNORECASE)


def redact(text: str, secret: str | None) -> str:
    """Remove the key (and anything key-shaped the server echoed) from a message."""
    if secret:
        text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def parse_retry_after(value: str | None, message: str = "") -> float | None:
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    match = _RETRY_IN.search(message or "")
    if match:
        amount = float(match.group(1))
        return amount / 1000.0 if match.group(2).lower() == "ms" else amount
    return None


def error_from_status(
    status: int,
    payload: dict[str, Any] | None,
    secret: str | None,
    *,
    retry_after_header: str | None = None,
    what: str = "the model endpoint",
) -> Exception:
    """Map an HTTP status (plain HTTP or an in-band WebSocket error) to a ModelError or signal."""
    err = (payload or {}).get("error") if isinstance((payload or {}).get("error"), dict) else {}
    err = err or {}
    code = str(err.get("code") or "")
    message = redact(str(err.get("message") or ""), secret)
    if code == "previous_response_not_found":
        return ChainBroken(message)
    if code == "websocket_connection_limit_reached":
        return ConnectionExpired(message)
    if status == 401 or code == "invalid_api_key":
        if secret:
            text = f"{what} rejected the API key (HTTP 401). Set {KEY_ENV_VAR} (or api_key in your editor settings) to a valid key."
        else:
            text = f"{what} requires an API key (HTTP 401). Set {KEY_ENV_VAR} (or api_key in your editor settings)."
        return ModelError("auth", text, status=401)
    if status == 403:
        return ModelError("auth", f"{what} refused access (HTTP 403): {message}", status=403)
    if code == "model_not_found" or (status == 404 and "model" in message.lower()):
        return ModelError("retired", message or "model not found", status=404)
    if status == 429:
        retry_after = parse_retry_after(retry_after_header, message)
        return ModelError("rate_limit", f"{what} is rate limiting requests (HTTP 429). {message}".strip(), retry_after=retry_after, status=429)
    if status >= 500:
        return ModelError("server", f"{what} had an error (HTTP {status}). {message}".strip(), status=status)
    if status in (404, 405):
        return TransportUnavailable(f"{what} has no such route (HTTP {status})", status)
    if status == 413:
        return ModelError("too_large", f"{what} refused the request as too large (HTTP 413).", status=413)
    return ModelError("protocol", f"{what} refused the request (HTTP {status}): {message or 'no details'}", status=status)


def redirect_error(url: str, location: str | None) -> ModelError:
    return ModelError(
        "config",
        f"The model endpoint {url} redirects to {location or 'another address'}. spark-ls does not follow "
        "redirects (the API key must only go where it is configured): set base_url to the final address.",
    )


def error_from_event(event: dict[str, Any], secret: str | None) -> Exception:
    status = event.get("status")
    raw_err, raw_headers = event.get("error"), event.get("headers")
    err: dict[str, Any] = raw_err if isinstance(raw_err, dict) else {}
    headers: dict[str, Any] = raw_headers if isinstance(raw_headers, dict) else {}
    if not isinstance(status, int):
        status = 429 if str(err.get("code", "")).startswith("rate_limit") else 400
    return error_from_status(status, {"error": err}, secret, retry_after_header=headers.get("retry-after"))


# ---------------------------------------------------------------------- backoff


def backoff_delay(attempt: int, *, base: float = 0.25, cap: float = 8.0) -> float:
    """Jittered exponential backoff: attempt 0 -> ~base, doubling, capped; jitter 50-100%."""
    delay = min(cap, base * 2.0**attempt)
    return delay * (0.5 + random.random() / 2)


def ws_url(base_url: str) -> str:
    """http(s)://host/v1 -> ws(s)://host/v1/responses."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return base + "/responses"
