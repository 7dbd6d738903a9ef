"""The model session: one interface over every transport (see ARCHITECTURE.md).

Transport choice (``Settings.transport``):
- ``auto``: the embedded local model when neither ``base_url`` nor ``api_key`` is set; otherwise
  the Responses WebSocket, falling back (once, remembered for the session) to Responses over
  HTTP SSE when the upgrade is answered 404/426, and to Chat Completions when ``/responses`` is
  missing too;
- ``ws`` | ``responses`` | ``chat`` | ``local`` force one.
``replay`` (a recording file) replaces the transport entirely; ``record`` appends every exchange.

Concurrency: a FIFO gate of ``pool_size`` slots. Retries: 429 honours retry-after, 5xx backs off
(jittered exponential), both up to ``max_retries``, and only while nothing has been streamed to
the caller. A retired model switches to the next fallback (classic.py). ``request_timeout``
bounds each attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Self

from spark_ls.config import Settings
from spark_ls.model.classic import (
    ModelChooser,
    ModelStatus,
    Notify,
    format_models,
    list_models,
)
from spark_ls.model.http import ChatHttpTransport, ResponsesHttpTransport, make_client
from spark_ls.model.replay import Recorder, Replayer
from spark_ls.model.transport import (
    DeltaCallback,
    Stats,
    Transport,
    TransportUnavailable,
    backoff_delay,
    redact,
)
from spark_ls.model.types import ModelError, ModelReply, ModelRequest
from spark_ls.model.ws import WsTransport

__all__ = ["ModelSession", "ModelStatus", "format_models", "list_models", "open_session"]

log = logging.getLogger("spark_ls.model.session")


class _LocalTransport:
    """Adapter over the embedded model (spark_ls.model.local, imported lazily)."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        from spark_ls.model.local import (
            LocalModel,  # heavy optional runtime: import on use
        )

        self._model = LocalModel(settings)

    @property
    def model_name(self) -> str:
        return str(self._model.name)

    async def start(self, model: str) -> None:
        await self._model.start()

    async def complete(self, model: str, req: ModelRequest, on_delta: DeltaCallback) -> ModelReply:
        if req.context:
            # The embedded model takes one prompt: put the stable context before the task.
            req = dataclasses.replace(req, input=f"{req.context}\n\n{req.input}", context="")
        return await self._model.complete(req, on_delta=on_delta)

    async def close(self) -> None:
        await self._model.close()

    async def complete_raw(self, prompt: str, max_tokens: int, stop: list[str], on_delta: DeltaCallback) -> ModelReply:
        return await self._model.complete_raw(prompt, max_tokens=max_tokens, stop=stop, on_delta=on_delta)

    async def warm_prompt(self, instructions: str) -> int:
        return await self._model.warm(instructions)


class _ReplayTransport:
    name = "replay"

    def __init__(self, replayer: Replayer, configured_model: str) -> None:
        self._replayer = replayer
        self._configured_model = configured_model

    async def start(self, model: str) -> None:
        return None

    async def complete(self, model: str, req: ModelRequest, on_delta: DeltaCallback) -> ModelReply:
        reply = self._replayer.reply(self._configured_model, req)
        if reply.text:
            on_delta(reply.text)
        return reply

    async def close(self) -> None:
        return None


def format_prompt(req: ModelRequest) -> str:
    """A request as readable text: what the model is told, in the order it is sent."""
    parts = [f"--- instructions\n{req.instructions}"]
    if req.context:
        parts.append(f"--- context\n{req.context}")
    parts.append(f"--- input\n{req.input}")
    return "\n".join(part.rstrip("\n") for part in parts) + "\n"


class ModelSession:
    """Create with :func:`open_session`; ``await start()``, then ``complete()`` concurrently."""

    def __init__(self, settings: Settings, notify: Notify | None = None) -> None:
        self.settings = settings
        self.problem: str | None = None
        self._notify = notify
        self._stats = Stats()
        self._chooser = ModelChooser(settings, notify)
        self._gate = asyncio.Semaphore(settings.pool_size)
        self._recorder = Recorder(settings.record) if settings.record else None
        self._secret = settings.api_key.reveal() if settings.api_key else None
        self._fallback_chain: list[str] = []
        self._transport: Transport = self._make_initial_transport()
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"ModelSession(model={self.model!r}, transport={self.transport_name!r})"

    # ------------------------------------------------------------------ properties

    @property
    def model(self) -> str:
        if isinstance(self._transport, _LocalTransport):
            return self._transport.model_name
        return self._chooser.current

    @property
    def transport_name(self) -> str:
        return self._transport.name

    @property
    def edit_format(self) -> str:
        if self.settings.edit_format != "auto":
            return self.settings.edit_format
        return "scope" if isinstance(self._transport, _LocalTransport) else "diff"

    @property
    def stats(self) -> dict[str, Any]:
        out = self._stats.as_dict()
        out["transport"] = self.transport_name
        out["model"] = self.model
        return out

    # ------------------------------------------------------------------ transports

    def _make_initial_transport(self) -> Transport:
        s = self.settings
        if s.replay:
            return _ReplayTransport(Replayer(s.replay), s.model)
        if s.uses_local_model:
            return _LocalTransport(s)
        if not s.tls_verify:
            log.warning("TLS certificate verification is OFF for %s (tls_verify = false)", s.effective_base_url)
        if s.transport == "responses":
            return ResponsesHttpTransport(s, self._stats)
        if s.transport == "chat":
            return ChatHttpTransport(s, self._stats)
        if s.transport == "auto":
            self._fallback_chain = ["responses", "chat"]
        return WsTransport(s, self._stats)

    async def _fall_back(self, failed: Transport, reason: str) -> bool:
        """Switch to the next transport in the auto chain; False when there is none."""
        if self._transport is not failed:
            return True  # a concurrent request already switched
        if not self._fallback_chain:
            return False
        name = self._fallback_chain.pop(0)
        client = make_client(self.settings)
        self._transport = ResponsesHttpTransport(self.settings, self._stats, client) if name == "responses" else ChatHttpTransport(self.settings, self._stats, client)
        self._stats.fallbacks += 1
        log.info("%s; using %s for this session", reason, name)
        try:
            await failed.close()
        except (OSError, RuntimeError) as exc:  # closing a transport that never connected
            log.debug("closing the %s transport: %s", failed.name, type(exc).__name__)
        return True

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect and warm. Never raises for an unreachable endpoint: requests reconnect lazily."""
        self._started = True
        while True:
            transport = self._transport
            try:
                await transport.start(self.model)
                return
            except TransportUnavailable as exc:
                if not await self._fall_back(transport, str(exc)):
                    log.warning("model endpoint: %s", exc)
                    return
            except ModelError as exc:
                if exc.kind.lasting:
                    self.problem = exc.message
                log.warning("model endpoint not ready (%s); will connect on the first request", exc.message)
                return

    async def close(self) -> None:
        self._closed = True
        await self._transport.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ requests

    async def complete(self, req: ModelRequest, *, on_delta: Callable[[str], None] | None = None) -> ModelReply:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("prompt sent to %s:\n%s", self.model, self.show_prompt(req))
        try:
            reply = await self._complete(req, on_delta=on_delta)
        except ModelError as exc:
            if exc.kind.lasting:
                self.problem = exc.message
            raise
        self.problem = None
        return reply

    def show_prompt(self, req: ModelRequest) -> str:
        """The prompt as sent (instructions, context, input), with the key and key-like text masked."""
        return redact(format_prompt(req), self._secret)

    async def _complete(self, req: ModelRequest, *, on_delta: Callable[[str], None] | None = None) -> ModelReply:
        if self._closed:
            raise ModelError("config", "The model session is closed.")
        streamed = False

        def forward(delta: str) -> None:
            nonlocal streamed
            streamed = True
            if on_delta is not None:
                on_delta(delta)

        async with self._gate:
            self._stats.requests += 1
            attempt = 0
            while True:
                transport = self._transport
                model = self._chooser.current
                # A CPU-bound local model reading a large file needs far longer than a hosted one.
                local = isinstance(transport, _LocalTransport)
                limit = self.settings.local_request_timeout if local else self.settings.request_timeout
                setting = "local_request_timeout" if local else "request_timeout"
                try:
                    async with asyncio.timeout(limit):
                        reply = await transport.complete(model, req, forward)
                except TimeoutError:
                    raise ModelError("timeout", f"The model did not finish within {setting} ({limit:g} s).") from None
                except TransportUnavailable as exc:
                    if streamed or not await self._fall_back(transport, str(exc)):
                        raise ModelError("unavailable", f"The model endpoint does not offer this API: {exc}") from None
                    continue
                except ModelError as exc:
                    if exc.kind == "retired" and not streamed and not isinstance(transport, (_LocalTransport, _ReplayTransport)):
                        self._chooser.retire(model, exc.message)  # raises when pinned / none left
                        continue
                    if exc.kind in ("rate_limit", "server") and not streamed and attempt < self.settings.max_retries:
                        delay = exc.retry_after if exc.retry_after is not None else backoff_delay(attempt)
                        if delay > self.settings.request_timeout:
                            raise  # waiting that long would outlast request_timeout anyway
                        attempt += 1
                        self._stats.retries += 1
                        log.info("model request failed (%s); retry %d/%d in %.2fs", exc.kind, attempt, self.settings.max_retries, delay)
                        await asyncio.sleep(delay)
                        continue
                    raise
                if self._recorder is not None:
                    self._recorder.record(self.settings.model, req, reply)
                return reply


    async def warm_prompt(self, instructions: str) -> int:
        """Evaluate the instructions the next actions will send, ahead of them: the embedded
        model's KV cache starts empty in a new process, while an endpoint keeps its own prompt
        cache. Returns the prompt tokens evaluated (0 where there is nothing to do)."""
        transport = self._transport
        if self._closed or not isinstance(transport, _LocalTransport):
            return 0
        return await transport.warm_prompt(instructions)

    # ------------------------------------------------------------------ raw (fill-in-the-middle)

    @property
    def supports_raw(self) -> bool:
        """Whether :meth:`complete_raw` works: the embedded model takes raw FIM prompts."""
        return isinstance(self._transport, _LocalTransport)

    async def complete_raw(
        self, prompt: str, *, max_tokens: int, stop: list[str] | None = None, on_delta: Callable[[str], None] | None = None
    ) -> ModelReply:
        """A raw completion of ``prompt`` (inline completions' fill-in-the-middle path); only on
        the embedded model (:attr:`supports_raw`). Same gate, timeout and error handling as
        :meth:`complete`, no retries (a stale completion is worth nothing)."""
        transport = self._transport
        if not isinstance(transport, _LocalTransport):
            raise ModelError("unavailable", f"the {transport.name} transport takes no raw prompts")
        if self._closed:
            raise ModelError("config", "The model session is closed.")
        async with self._gate:
            self._stats.requests += 1
            limit = self.settings.local_request_timeout
            try:
                async with asyncio.timeout(limit):
                    reply = await transport.complete_raw(prompt, max_tokens, list(stop or ()), on_delta or (lambda _d: None))
            except TimeoutError:
                raise ModelError("timeout", f"The model did not finish within local_request_timeout ({limit:g} s).") from None
            except ModelError as exc:
                if exc.kind.lasting:
                    self.problem = exc.message
                raise
        self.problem = None
        return reply


def open_session(settings: Settings, *, notify: Notify | None = None) -> ModelSession:
    """A session for ``settings``; call ``await session.start()`` before the first request."""
    return ModelSession(settings, notify)
