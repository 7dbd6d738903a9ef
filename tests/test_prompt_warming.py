"""PromptWarming (spark_ls/server/prompt_warming.py) as a plain class: which instructions it warms,
when, and how often. The embedded model's side (warm() really fills the cache) is tested with the
real model in tests/test_local_model.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from spark_ls.model.prompts import build_scope_prompt, scope_instructions
from spark_ls.model.types import ModelError
from spark_ls.server.prompt_warming import PromptWarming


class FakeSession:
    def __init__(self, edit_format: str = "scope", fail: bool = False) -> None:
        self.edit_format = edit_format
        self.model = "qwen2.5-coder-1.5b-instruct-q4_k_m (local)"
        self.fail = fail
        self.warmed: list[str] = []

    async def warm_prompt(self, instructions: str) -> int:
        if self.fail:
            raise ModelError("unavailable", "the local model has been closed")
        self.warmed.append(instructions)
        return 230


def fake_server(session: FakeSession, *, local: bool = True) -> Any:
    docs = {
        "file:///a.py": SimpleNamespace(language=SimpleNamespace(name="python")),
        "file:///b.go": SimpleNamespace(language=SimpleNamespace(name="go")),
        "file:///notes.txt": SimpleNamespace(language=None),
    }

    async def ready_session() -> FakeSession:
        return session

    return SimpleNamespace(
        settings=SimpleNamespace(uses_local_model=local),
        documents=SimpleNamespace(get=docs.get),
        ready_session=ready_session,
    )


async def test_first_opened_document_warms_its_languages_instructions_once() -> None:
    session = FakeSession()
    warming = PromptWarming(fake_server(session))
    warming.document_opened("file:///notes.txt")  # no language: nothing to warm yet
    assert warming.task is None
    warming.document_opened("file:///a.py")
    warming.document_opened("file:///b.go")
    assert warming.task is not None
    assert await warming.task == 230
    assert session.warmed == [scope_instructions(session.model, "python")]
    # The warmed text is exactly the prefix a Python action sends.
    instructions, _context, _input = build_scope_prompt(
        session.model, path="a.py", language="python", task="t", kind="function", name="f", source="def f(): pass\n"
    )
    assert session.warmed[0] == instructions


@pytest.mark.parametrize(("local", "edit_format"), [(False, "scope"), (True, "diff")])
async def test_nothing_is_warmed_without_the_embedded_models_scope_prompts(local: bool, edit_format: str) -> None:
    session = FakeSession(edit_format=edit_format)
    warming = PromptWarming(fake_server(session, local=local))
    warming.document_opened("file:///a.py")
    if warming.task is not None:
        assert await warming.task == 0
    assert session.warmed == []


async def test_a_failed_warm_up_is_quiet_and_shutdown_cancels_a_running_one() -> None:
    warming = PromptWarming(fake_server(FakeSession(fail=True)))
    warming.document_opened("file:///a.py")
    assert warming.task is not None and await warming.task == 0

    class SlowSession(FakeSession):
        async def warm_prompt(self, instructions: str) -> int:
            await asyncio.sleep(30)
            return 1

    slow = PromptWarming(fake_server(SlowSession()))
    slow.document_opened("file:///a.py")
    await asyncio.sleep(0.01)
    slow.shutdown()
    assert slow.task is not None
    with pytest.raises(asyncio.CancelledError):
        await slow.task
