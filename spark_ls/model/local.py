"""The embedded local model: llama.cpp (via ``xllamacpp``) running in this process.

Used when no endpoint is configured. One request runs at a time (a 1.5B model on two cores has
no room for more); requests queue on a lock. Decoding is greedy so an edit is reproducible.

Cancellation: cancelling the task awaiting :meth:`LocalModel.complete` raises ``CancelledError``
in it at once. The worker thread notices at the next streamed token (tens of milliseconds),
tells llama.cpp to stop, and only then releases the lock for the next request; whatever it had
generated is discarded. If llama.cpp is still evaluating the prompt (no token streamed yet) the
stop takes effect when the first token arrives, so the lock can stay held for the rest of the
prompt evaluation (a few seconds for a large prompt).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_ls.config import Settings
from spark_ls.model.types import ModelError, ModelReply, ModelRequest
from spark_ls.model.weights import (
    INSTALL_COMMAND,
    QWEN_CODER_1_5B,
    default_cache_dir,
    ensure_weights,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT_TOKENS = 768
# Speculative decoding without a draft model: a scope rewrite mostly copies its input, so the tokens
# that followed the last few generated tokens earlier in the context (the prompt's copy of the code)
# are proposed as a draft and checked in one batch. llama.cpp's "ngram-simple" drafter; the sizes are
# the ones bench/bench_local.py measured best on two cores (short drafts: a rejected token costs a
# batch slot, which on a CPU is not free).
SPEC_NGRAM = 4  # tokens that must match to propose a draft
SPEC_DRAFT = 16  # longest draft
# Host-memory copies of earlier prompts' KV cache (llama.cpp's prompt cache): returning to a
# function edited a few requests ago reuses its prefix instead of re-reading it.
PROMPT_CACHE_MIB = 512
# libgomp (llama.cpp's thread pool here) spins idle threads by default, which starves the editor
# and the language server on a 2-core machine; read once when libgomp loads, so set before import.
_OMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


class PromptStateStore:
    """llama.cpp's KV cache of a chat prompt, kept on disk from one process to the next.

    Every ``spark-ls check`` or editor start used to re-read the same instructions (and, re-run on
    an unchanged file, the same code) before its first token. After the first chat request of a
    process the slot's state is saved under a name derived from the model, the runtime and the
    request's instructions; the first chat request of a later process with the same instructions
    restores it, and llama.cpp then evaluates only what follows the common prefix (a mismatch
    just means a normal evaluation). One save per instructions text per process bounds the disk
    writes (~29 KB per token for the 1.5B model). Failures are logged and ignored: this is a cache.
    """

    def __init__(self, directory: Path, model_key: str) -> None:
        self.directory = directory
        self._model_key = model_key
        self._saved: set[str] = set()
        self._restored = False

    @staticmethod
    def model_key_for(path: Path, settings: Settings, runtime_version: str) -> str:
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{settings.local_ctx}|{runtime_version}"

    def file_name(self, instructions: str) -> str:
        digest = hashlib.sha256(f"{self._model_key}\0{instructions}".encode()).hexdigest()[:32]
        return f"prompt-{digest}.bin"

    def has(self, instructions: str) -> bool:
        """Whether a state saved for ``instructions`` is on disk."""
        return (self.directory / self.file_name(instructions)).is_file()

    def before_request(self, slots: SlotClient, instructions: str) -> int | None:
        """Restore a saved state into the still-empty slot; the tokens restored, or None."""
        if self._restored:
            return None
        self._restored = True  # only the first request of a process finds an empty slot
        if not self.has(instructions):
            return None
        answer = slots.action("restore", self.file_name(instructions))
        restored = answer.get("n_restored") if answer else None
        return int(restored) if isinstance(restored, int) else None

    def after_request(self, slots: SlotClient, instructions: str) -> bool:
        """Save the slot once per instructions text per process (write, then rename into place)."""
        name = self.file_name(instructions)
        if name in self._saved:
            return False
        self._saved.add(name)
        partial = f"{name}.{os.getpid()}.partial"
        if not slots.action("save", partial):
            return False
        try:
            os.replace(self.directory / partial, self.directory / name)
        except OSError as exc:
            log.debug("could not keep the prompt state %s: %s", name, exc)
            return False
        return True


# The runtime's port is on loopback: never route it (and its key) through a configured HTTP proxy.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SlotClient:
    """llama.cpp's ``/slots/0?action=save|restore`` on the runtime's own loopback port (key-locked;
    the in-process API has no slot calls)."""

    def __init__(self, address: str, api_key: str) -> None:
        self._address = address.rstrip("/")
        self._api_key = api_key

    def action(self, action: str, filename: str) -> dict[str, Any] | None:
        request = urllib.request.Request(
            f"{self._address}/slots/0?action={action}",
            data=json.dumps({"filename": filename}).encode(),
            headers={"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with _NO_PROXY.open(request, timeout=30) as response:
                answer = json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError) as exc:
            log.debug("prompt state %s of %s failed: %s", action, filename, exc)
            return None
        return answer if isinstance(answer, dict) else None


class LocalModel:
    """In-process chat model. API: ``start()``, ``complete(req, on_delta)``, ``close()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        speculative: bool = True,
        prompt_cache: bool = True,
        prompt_state_dir: Path | None = None,
    ) -> None:
        """``speculative``/``prompt_cache`` exist for bench/bench_local.py's on/off comparisons;
        ``prompt_state_dir`` is where prompt states persist (default: the user cache directory;
        ``prompt_cache=False`` turns persistence off too)."""
        self._settings = settings
        self._speculative = speculative
        self._prompt_cache = prompt_cache
        self._prompt_state_dir = prompt_state_dir or default_cache_dir().parent / "prompt-state"
        self._prompt_states: PromptStateStore | None = None
        self._slots: SlotClient | None = None
        custom = settings.local_model_path
        model_id = Path(custom).stem if custom else QWEN_CODER_1_5B.display_name
        self.name = f"{model_id} (local)"
        self.model_path: Path | None = None
        self._server: Any = None  # xllamacpp.Server once loaded
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-ls-local")
        self._start_lock = asyncio.Lock()
        self._request_lock = asyncio.Lock()
        self._closed = False
        self._warmed = False
        self._running_stop: threading.Event | None = None  # set to stop the generation in progress
        self._stats: dict[str, Any] = {
            "requests": 0,
            "cancelled": 0,
            "errors": 0,
            "prepare_seconds": None,
            "load_seconds": None,
            "output_tokens": 0,
            "warmed_tokens": 0,
        }

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self._stats)

    async def start(self) -> None:
        """Assemble/verify the weights (first run only) and load the model, off the event loop."""
        async with self._start_lock:
            if self._closed:
                raise ModelError("unavailable", "the local model has been closed")
            if self._server is not None:
                return
            loop = asyncio.get_running_loop()
            began = time.perf_counter()
            path = await loop.run_in_executor(self._executor, ensure_weights, self._settings.local_model_path)
            self._stats["prepare_seconds"] = round(time.perf_counter() - began, 3)
            began = time.perf_counter()
            self._server = await loop.run_in_executor(self._executor, self._load, path)
            self._stats["load_seconds"] = round(time.perf_counter() - began, 3)
            self.model_path = path

    def _load(self, path: Path) -> Any:
        for name, value in _OMP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        try:
            import xllamacpp
        except ImportError:
            raise ModelError(
                "unavailable", f"The embedded model runtime (xllamacpp) is not installed. Install it with: {INSTALL_COMMAND}"
            ) from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self._settings.local_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = self._settings.local_threads
        params.cpuparams_batch.n_threads = self._settings.local_threads
        params.verbosity = 1  # errors only; llama.cpp logs to stderr, never to the LSP's stdout
        params.offline = True  # never fetch anything
        # xllamacpp also serves HTTP on a loopback port we do not use; a random key and no CORS
        # keep other local processes and web pages from driving the model.
        api_key = secrets.token_hex(24)
        params.api_keys = [api_key]
        params.cors_origins = ""
        params.ui = False
        params.endpoint_metrics = True  # read in-process by runtime_metrics(); the HTTP side is key-locked
        # Keep the previous prompt's KV cache (the stable instructions + file context come first, so a
        # second action in the same file evaluates only what follows the shared prefix).
        params.cache_prompt = self._prompt_cache
        params.cache_ram_mib = PROMPT_CACHE_MIB if self._prompt_cache else 0
        states = self._prompt_state_store(path, xllamacpp) if self._prompt_cache else None
        if states is not None:
            params.endpoint_slots = True
            params.slot_save_path = str(states.directory) + os.sep  # llama.cpp appends the name as is
        if self._speculative:
            kind = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
            params.speculative.types = [kind]
            params.speculative.ngram_simple.size_n = SPEC_NGRAM
            params.speculative.ngram_simple.size_m = SPEC_DRAFT
        try:
            server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - the runtime raises bare RuntimeErrors for a bad file
            raise ModelError("unavailable", f"could not load the local model {str(path)!r}: {exc}") from None
        address = getattr(server, "listening_address", None)
        if states is not None and isinstance(address, str) and address:
            self._prompt_states, self._slots = states, SlotClient(address, api_key)
        return server

    def _prompt_state_store(self, path: Path, runtime: Any) -> PromptStateStore | None:
        try:
            self._prompt_state_dir.mkdir(parents=True, exist_ok=True)
            key = PromptStateStore.model_key_for(path, self._settings, str(getattr(runtime, "__version__", "")))
        except OSError as exc:
            log.debug("prompt states will not persist: %s", exc)
            return None
        return PromptStateStore(self._prompt_state_dir, key)

    async def runtime_metrics(self) -> dict[str, float]:
        """llama.cpp's own counters (e.g. ``n_decode_total``, ``tokens_predicted_total``); {} if not loaded."""
        server = self._server
        if server is None:
            return {}
        text = await asyncio.get_running_loop().run_in_executor(None, server.handle_metrics)
        return _parse_prometheus(text)

    async def complete(self, req: ModelRequest, on_delta: Callable[[str], None] | None = None) -> ModelReply:
        """Run one chat completion; stream text deltas to ``on_delta`` on the event loop."""
        return await self._run(self._request_body(req), on_delta, "handle_chat_completions")

    async def warm(self, instructions: str) -> int:
        """Evaluate a chat prompt's ``instructions`` before the first request, so that request
        evaluates only its own code and task. Returns the prompt tokens evaluated: 0 when a
        saved prompt state for them exists (the first request restores it instead) or when the
        model has already served or warmed (its cache is no longer empty)."""
        await self.start()
        if self._warmed or self._stats["requests"]:
            return 0
        if self._prompt_states is not None and self._prompt_states.has(instructions):
            return 0
        self._warmed = True  # set before the next await, so a concurrent caller does not warm again
        body = self._request_body(ModelRequest(instructions=instructions, input=""))
        body["max_tokens"] = 1
        # Not saved as the prompt state: the first real request saves its whole prompt.
        reply = await self._run(body, None, "handle_chat_completions", keep_state=False)
        evaluated = int(reply.usage.get("prompt_evaluated") or 0)
        self._stats["warmed_tokens"] = evaluated
        return evaluated

    async def complete_raw(
        self, prompt: str, *, max_tokens: int, stop: list[str] | None = None, on_delta: Callable[[str], None] | None = None
    ) -> ModelReply:
        """A raw (no chat template) greedy completion of ``prompt``: fill-in-the-middle prompts
        (``<|fim_prefix|>...<|fim_suffix|>...<|fim_middle|>``) for inline completions. The
        prompt's special tokens are parsed; llama.cpp reuses the KV cache for its common prefix."""
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "top_k": 1,
            "seed": 0,
            "repeat_penalty": 1.0,
            "cache_prompt": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if stop:
            body["stop"] = list(stop)
        return await self._run(body, on_delta, "handle_completions")

    async def _run(
        self, body: dict[str, Any], on_delta: Callable[[str], None] | None, method: str, *, keep_state: bool = True
    ) -> ModelReply:
        await self.start()
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def deliver(text: str) -> None:
            if on_delta is not None and not stop.is_set():
                on_delta(text)

        def emit(text: str) -> None:  # worker thread -> event loop
            loop.call_soon_threadsafe(deliver, text)

        await self._request_lock.acquire()
        server = self._server
        if server is None:  # closed while this request waited its turn
            self._request_lock.release()
            raise ModelError("unavailable", "the local model has been closed")
        self._stats["requests"] += 1
        self._running_stop = stop
        try:
            generate = self._generate_keeping_state if keep_state else _generate
            work = loop.run_in_executor(self._executor, generate, server, body, emit, stop, method)
        except BaseException:
            self._request_lock.release()
            raise
        # The lock is released when the worker is truly done, not when the caller stops waiting,
        # so a cancelled generation never overlaps the next one.
        def finished(done: asyncio.Future[Any]) -> None:
            _consume(done)
            self._request_lock.release()

        work.add_done_callback(finished)
        try:
            outcome = await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()
            self._stats["cancelled"] += 1
            raise
        except ModelError:
            self._stats["errors"] += 1
            raise
        self._stats["output_tokens"] += outcome.usage.get("output_tokens", 0)
        return ModelReply(text=outcome.text, model=self.name, response_id=None, usage=outcome.usage)

    def _generate_keeping_state(
        self, server: Any, body: dict[str, Any], emit: Callable[[str], None], stop: threading.Event, method: str
    ) -> _Outcome:
        """Runs on the worker thread: restore/save the persisted prompt state around a chat request."""
        states, slots = self._prompt_states, self._slots
        messages = body.get("messages") or []
        instructions = messages[0].get("content") if messages and messages[0].get("role") == "system" else None
        if states is None or slots is None or method != "handle_chat_completions" or not isinstance(instructions, str):
            return _generate(server, body, emit, stop, method)
        restored = states.before_request(slots, instructions)
        outcome = _generate(server, body, emit, stop, method)
        outcome.usage["restored_tokens"] = restored or 0
        states.after_request(slots, instructions)
        return outcome

    def _request_body(self, req: ModelRequest) -> dict[str, Any]:
        messages = []
        if req.instructions:
            messages.append({"role": "system", "content": req.instructions})
        # Stable context first, task last: llama.cpp reuses the KV cache for the longest common
        # prefix, so consecutive edits of an unchanged file only evaluate the new tail.
        user = f"{req.context}\n\n{req.input}" if req.context else req.input
        messages.append({"role": "user", "content": user})
        return {
            "messages": messages,
            "max_tokens": req.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS,
            # Greedy: the same request gives the same edit.
            "temperature": 0,
            "top_k": 1,
            "seed": 0,
            "repeat_penalty": 1.0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": self._prompt_cache,
        }

    async def close(self) -> None:
        """Stop accepting requests and free the model once any running generation ends."""
        async with self._start_lock:
            if self._closed:
                return
            self._closed = True
            server, self._server = self._server, None
            if self._running_stop is not None:
                self._running_stop.set()  # the caller gets ModelError("cancelled")
        if server is not None:
            # Dropping the last reference runs the runtime's destructor (joins its loop thread);
            # do it on the worker so it queues behind any generation still finishing.
            holder = [server]
            del server  # the holder must be the last reference for the release to happen there
            await asyncio.get_running_loop().run_in_executor(self._executor, _release, holder)
        self._executor.shutdown(wait=False)


class _Outcome:
    __slots__ = ("text", "usage")

    def __init__(self, text: str, usage: dict[str, Any]) -> None:
        self.text = text
        self.usage = usage


def _generate(
    server: Any, body: dict[str, Any], emit: Callable[[str], None], stop: threading.Event,
    method: str = "handle_chat_completions",
) -> _Outcome:
    """Runs on the worker thread. Returning True from the chunk callback makes llama.cpp stop."""
    pieces: list[str] = []
    final: dict[str, Any] = {}
    failure: list[ModelError] = []
    began = time.perf_counter()

    def on_chunk(chunk: Any) -> bool:
        if stop.is_set():
            return True
        try:
            if not isinstance(chunk, dict):
                failure.append(ModelError("protocol", f"local model sent an unexpected chunk: {chunk!r:.200}"))
                return True
            if "error" in chunk:
                failure.append(_error_from(chunk["error"]))
                return True
            for choice in chunk.get("choices") or ():
                text = (choice.get("delta") or {}).get("content") or choice.get("text")  # chat | raw
                if text:
                    if not pieces:
                        final["first_token_ms"] = (time.perf_counter() - began) * 1000.0
                    pieces.append(text)
                    emit(text)
                if choice.get("finish_reason"):
                    final["finish_reason"] = choice["finish_reason"]
            if chunk.get("usage"):
                final["usage"] = chunk["usage"]
                final["timings"] = chunk.get("timings") or {}
            return False
        except Exception as exc:  # noqa: BLE001 - the runtime swallows callback exceptions; keep ours
            failure.append(ModelError("protocol", f"local model stream could not be read: {exc}"))
            return True

    try:
        getattr(server, method)(body, on_chunk)
    except Exception as exc:  # noqa: BLE001 - whatever the native runtime raises becomes a ModelError
        raise ModelError("server", f"local model failed: {exc}") from None
    if failure:
        raise failure[0]
    if stop.is_set():  # never pass a cut-off reply on as if it were complete
        raise ModelError("cancelled", "the local model stopped before finishing (cancelled or shut down)")
    usage = final.get("usage") or {}
    timings = final.get("timings") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return _Outcome(
        "".join(pieces),
        {
            "input_tokens": usage.get("prompt_tokens", 0),
            "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
            "cached_tokens": cached,
            "input_tokens_details": {"cached_tokens": cached},
            "finish_reason": final.get("finish_reason"),
            "prompt_ms": timings.get("prompt_ms"),
            "generation_ms": timings.get("predicted_ms"),
            "tokens_per_second": timings.get("predicted_per_second"),
            # Prompt tokens actually evaluated (the rest came from the KV cache) and the draft counts.
            "prompt_evaluated": timings.get("prompt_n"),
            "first_token_ms": final.get("first_token_ms"),
            "draft_tokens": timings.get("draft_n", 0),
            "draft_accepted": timings.get("draft_n_accepted", 0),
        },
    )


def _error_from(error: Any) -> ModelError:
    if not isinstance(error, dict):
        return ModelError("server", f"local model error: {error!r:.300}")
    message = str(error.get("message") or "unknown error")
    if error.get("type") == "exceed_context_size_error":
        return ModelError(
            "too_large",
            f"the request is too large for the local model: {message} (raise local_ctx or select less code)",
        )
    if error.get("code") == 400 or error.get("type") == "invalid_request_error":
        return ModelError("protocol", f"local model rejected the request: {message}")
    return ModelError("server", f"local model error: {message}")


def _consume(done: asyncio.Future[Any]) -> None:
    # Mark a result/exception nobody awaits any more (cancelled caller) as retrieved.
    if not done.cancelled():
        done.exception()


def _release(holder: list[Any]) -> None:
    holder.clear()


def _parse_prometheus(text: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            metrics[name.removeprefix("llamacpp:")] = float(value)
        except ValueError:
            continue
    return metrics
