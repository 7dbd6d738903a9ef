"""LocalModel's request handling against a scripted in-process runtime (no weights needed):
request shape, streaming, usage, error mapping, serialisation and cancellation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spark_ls.config import Settings
from spark_ls.model.local import DEFAULT_MAX_OUTPUT_TOKENS, LocalModel
from spark_ls.model.types import ModelError, ModelRequest


class ScriptedRuntime:
    """Stands in for xllamacpp.Server: streams chunks like llama.cpp's chat endpoint does."""

    def __init__(self, tokens: list[str], *, error: dict[str, Any] | None = None, endless_first: bool = False) -> None:
        self.tokens = tokens
        self.error = error
        self.endless_first = endless_first  # call 1 streams until told to stop (500 tokens at most)
        self.bodies: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.first_token_sent = threading.Event()
        self.release = threading.Event()  # an endless stream waits on this between tokens

    def handle_chat_completions(self, body: dict[str, Any], callback: Callable[[Any], bool]) -> None:
        self.bodies.append(body)
        number = len(self.bodies)
        endless = self.endless_first and number == 1
        self.events.append(f"start {number}")
        try:
            if self.error is not None:
                callback({"error": self.error})
                return
            if callback({"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}]}):
                return
            sent = 0
            while True:
                token = self.tokens[sent % len(self.tokens)]
                stop = callback({"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]})
                sent += 1
                self.first_token_sent.set()
                if stop:
                    self.events.append(f"stopped {number} after {sent}")
                    return
                if sent == (500 if endless else len(self.tokens)):  # bounded, so a missed stop fails fast
                    break
                if endless:
                    self.release.wait(0.01)
            callback({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            callback(
                {
                    "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": sent, "total_tokens": 11 + sent,
                              "prompt_tokens_details": {"cached_tokens": 4}},
                    "timings": {"prompt_ms": 5.0, "predicted_ms": 20.0, "predicted_per_second": 50.0},
                }
            )
        finally:
            self.events.append(f"end {number}")

    def handle_metrics(self) -> str:
        return "# HELP x\nllamacpp:n_decode_total 7\nllamacpp:tokens_predicted_total 3\n"


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-test.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 16)
    return path


def model_with(runtime: ScriptedRuntime, gguf: Path, monkeypatch: pytest.MonkeyPatch) -> LocalModel:
    loaded: list[Path] = []

    def load(self: LocalModel, path: Path) -> ScriptedRuntime:
        loaded.append(path)
        return runtime

    monkeypatch.setattr(LocalModel, "_load", load)
    model = LocalModel(Settings(local_model_path=str(gguf)))
    model.loaded_paths = loaded  # type: ignore[attr-defined]
    return model


async def test_request_is_greedy_chat_with_system_and_user(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = ScriptedRuntime(["ok"])
    model = model_with(runtime, gguf, monkeypatch)
    await model.complete(ModelRequest(instructions="be terse", input="fix it"))
    await model.complete(ModelRequest(instructions="", input="again", max_output_tokens=42))
    await model.complete(ModelRequest(instructions="s", input="Task: fix", context="File a.py:\nx = 1"))
    await model.close()

    first, second, third = runtime.bodies
    assert first["messages"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "fix it"}]
    assert (first["temperature"], first["top_k"], first["seed"], first["repeat_penalty"]) == (0, 1, 0, 1.0)
    assert first["max_tokens"] == DEFAULT_MAX_OUTPUT_TOKENS
    assert second["messages"] == [{"role": "user", "content": "again"}]
    assert second["max_tokens"] == 42
    # Context before the task, in the one user message (keeps the cacheable prefix stable).
    assert third["messages"][1] == {"role": "user", "content": "File a.py:\nx = 1\n\nTask: fix"}
    assert model.loaded_paths == [gguf]  # type: ignore[attr-defined]  # loaded once, lazily


async def test_streams_deltas_and_fills_reply(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = ScriptedRuntime(["```python\n", "def f():\n", "    return 1\n", "```"])
    model = model_with(runtime, gguf, monkeypatch)
    await model.start()
    deltas: list[str] = []

    reply = await model.complete(ModelRequest("sys", "user"), on_delta=deltas.append)
    await asyncio.sleep(0)  # deltas are delivered on the loop via call_soon_threadsafe
    await model.close()

    assert reply.text == "```python\ndef f():\n    return 1\n```"
    assert "".join(deltas) == reply.text
    assert reply.model == "tiny-test (local)" == model.name
    assert reply.response_id is None
    assert reply.usage["input_tokens"] == 11
    assert reply.usage["output_tokens"] == 4
    assert reply.usage["cached_tokens"] == 4
    assert reply.usage["input_tokens_details"] == {"cached_tokens": 4}
    assert reply.usage["finish_reason"] == "stop"
    assert reply.usage["tokens_per_second"] == 50.0


@pytest.mark.parametrize(
    ("error", "kind", "fragment"),
    [
        ({"code": 400, "type": "exceed_context_size_error", "message": "request (5030 tokens) exceeds the available context size (4096 tokens)"},
         "too_large", "5030 tokens"),
        ({"code": 400, "type": "invalid_request_error", "message": "bad field"}, "protocol", "bad field"),
        ({"code": 500, "type": "server_error", "message": "boom"}, "server", "boom"),
    ],
)
async def test_runtime_errors_become_model_errors(
    gguf: Path, monkeypatch: pytest.MonkeyPatch, error: dict[str, Any], kind: str, fragment: str
) -> None:
    model = model_with(ScriptedRuntime([], error=error), gguf, monkeypatch)
    with pytest.raises(ModelError) as caught:
        await model.complete(ModelRequest("s", "u"))
    await model.close()
    assert caught.value.kind == kind
    assert fragment in caught.value.message
    assert model.stats["errors"] == 1


async def test_requests_run_one_at_a_time(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = ScriptedRuntime(["a", "b", "c"])
    model = model_with(runtime, gguf, monkeypatch)
    replies = await asyncio.gather(*(model.complete(ModelRequest("s", f"u{n}")) for n in range(3)))
    await model.close()
    assert [r.text for r in replies] == ["abc"] * 3
    assert runtime.events == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]


async def test_cancel_stops_generation_before_next_request(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = ScriptedRuntime(["tok"], endless_first=True)
    model = model_with(runtime, gguf, monkeypatch)
    await model.start()
    deltas: list[str] = []
    first = asyncio.create_task(model.complete(ModelRequest("s", "long"), on_delta=deltas.append))
    await asyncio.get_running_loop().run_in_executor(None, runtime.first_token_sent.wait)

    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = await model.complete(ModelRequest("s", "short"))
    await model.close()

    assert second.text == "tok"
    stopped = [e for e in runtime.events if e.startswith("stopped 1")]
    assert len(stopped) == 1
    # The second generation starts only after the cancelled one returned to the runtime.
    assert runtime.events.index("end 1") < runtime.events.index("start 2")
    assert model.stats["cancelled"] == 1


async def test_closed_model_refuses_requests(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_with(ScriptedRuntime(["x"]), gguf, monkeypatch)
    await model.start()
    await model.close()
    with pytest.raises(ModelError) as caught:
        await model.complete(ModelRequest("s", "u"))
    assert caught.value.kind == "unavailable"


async def test_bad_model_path_fails_start_with_config_error(tmp_path: Path) -> None:
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    model = LocalModel(Settings(local_model_path=str(not_a_model)))
    with pytest.raises(ModelError) as caught:
        await model.start()
    await model.close()
    assert caught.value.kind == "config"


async def test_runtime_metrics_are_parsed(gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_with(ScriptedRuntime(["x"]), gguf, monkeypatch)
    assert await model.runtime_metrics() == {}
    await model.start()
    metrics = await model.runtime_metrics()
    await model.close()
    assert metrics == {"n_decode_total": 7.0, "tokens_predicted_total": 3.0}


async def test_close_stops_a_running_generation_and_fails_waiting_requests(
    gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = ScriptedRuntime(["tok"], endless_first=True)
    model = model_with(runtime, gguf, monkeypatch)
    await model.start()
    running = asyncio.create_task(model.complete(ModelRequest("s", "long")))
    await asyncio.get_running_loop().run_in_executor(None, runtime.first_token_sent.wait)
    waiting = asyncio.create_task(model.complete(ModelRequest("s", "queued")))
    await asyncio.sleep(0)

    await model.close()
    results = await asyncio.gather(running, waiting, return_exceptions=True)

    assert [type(r) for r in results] == [ModelError, ModelError]
    assert results[0].kind == "cancelled"  # a cut-off reply is never returned as if complete
    assert results[1].kind == "unavailable"
    assert any(e.startswith("stopped 1") for e in runtime.events)
    assert len(runtime.bodies) == 1
