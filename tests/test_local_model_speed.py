"""The embedded model's speed settings reach llama.cpp: n-gram speculative decoding (no draft
model), the prompt cache, and a request body that keeps the stable context first. The runtime's
Server is replaced by a recorder, so no weights are loaded; the parameters are xllamacpp's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

xllamacpp = pytest.importorskip("xllamacpp")

from spark_ls.config import Settings
from spark_ls.model import local
from spark_ls.model.types import ModelRequest


class Recorder:
    params: ClassVar[list[Any]] = []

    def __init__(self, params: Any) -> None:
        Recorder.params.append(params)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    Recorder.params = []
    monkeypatch.setattr(xllamacpp, "Server", Recorder)
    return Recorder.params


def test_speculative_ngram_drafting_and_prompt_cache_are_on_by_default(recorded: list[Any], tmp_path: Path) -> None:
    local.LocalModel(Settings(transport="local"))._load(tmp_path / "m.gguf")
    params = recorded[0]
    ngram = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE
    assert list(params.speculative.types) == [ngram]
    assert params.speculative.ngram_simple.size_n == local.SPEC_NGRAM
    assert params.speculative.ngram_simple.size_m == local.SPEC_DRAFT
    assert params.cache_prompt is True and params.cache_ram_mib == local.PROMPT_CACHE_MIB


def test_both_can_be_switched_off_for_comparisons(recorded: list[Any], tmp_path: Path) -> None:
    local.LocalModel(Settings(transport="local"), speculative=False, prompt_cache=False)._load(tmp_path / "m.gguf")
    params = recorded[0]
    none = xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NONE
    assert list(params.speculative.types) == [none]
    assert params.cache_prompt is False and params.cache_ram_mib == 0


def test_request_keeps_instructions_then_file_context_then_task() -> None:
    model = local.LocalModel(Settings(transport="local"))
    body = model._request_body(ModelRequest("INSTRUCTIONS", "TASK", context="FILE CONTEXT"))
    assert body["cache_prompt"] is True and body["temperature"] == 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == "INSTRUCTIONS"
    user = body["messages"][1]["content"]
    assert user.index("FILE CONTEXT") < user.index("TASK")
