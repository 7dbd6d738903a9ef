"""The inline-completion library (spark_ls.inline): context, prompts, post-processing, cache,
coalescing. No LSP, no model: pure functions and asyncio."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spark_ls.context.document import snapshot_of
from spark_ls.context.languages import language_for
from spark_ls.inline import (
    LatestOnly,
    SuggestionCache,
    Superseded,
    build_context,
    finalize,
)
from spark_ls.inline.postprocess import Suggestion, clean_reply, unit_complete
from spark_ls.inline.prompting import (
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    fim_prompt,
    instruction_request,
)

PY = language_for(language_id="python")

SOURCE = '''import os
from pathlib import Path


def helper(path):
    """Return the file's size."""
    return os.path.getsize(path)


def total(paths):
    result = 0
    for p in paths:
        result += helper(p)
    return result
'''


def ctx_at(text: str, marker: str = "|", **kw):
    offset = text.index(marker)
    text = text.replace(marker, "", 1)
    snap = snapshot_of(text, PY)
    return build_context(snap, offset, path="/w/m.py", **kw), text


def apply(text: str, s: Suggestion) -> str:
    return text[: s.start] + s.new_text + text[s.end :]


# ----------------------------------------------------------------- context


def test_context_window_and_stable_header() -> None:
    text = SOURCE.replace("        result += helper(p)", "        result += |")
    ctx, plain = ctx_at(text)
    assert ctx.prefix.endswith("        result += ")
    assert ctx.suffix.startswith("\n    return result")
    assert plain[ctx.window_start : ctx.offset] == ctx.prefix
    assert ctx.line_prefix == "        result += " and ctx.line_rest == ""
    # Far-away definitions the window uses come as stable context, not in the window.
    big = "import os\n\n\ndef helper(path):\n    return os.path.getsize(path)\n" + "\n".join(f"X{i} = {i}" for i in range(60)) + "\n\n\ndef total(paths):\n    return helper(|)\n"
    ctx2, _ = ctx_at(big)
    assert "def helper(path):" in ctx2.header and "import os" in ctx2.header
    assert "def helper" not in ctx2.prefix


def test_context_respects_budget_on_a_large_file() -> None:
    lines = [f"    v{i} = {i} * 2 + {i}\n" for i in range(3000)]
    text = "def big():\n" + "".join(lines[:1500]) + "    |\n" + "".join(lines[1500:])
    ctx, _ = ctx_at(text, budget_tokens=500)
    assert len(ctx.prefix) + len(ctx.suffix) + len(ctx.header) <= 500 * 4
    assert ctx.prefix.endswith("\n    ") and len(ctx.prefix) > len(ctx.suffix)


def test_prompts_put_stable_context_first() -> None:
    ctx, _ = ctx_at("import os\n" + "\n" * 30 + "def f():\n    return os.|\n")
    prompt = fim_prompt(ctx)
    assert prompt.index(FIM_PREFIX) < prompt.index(FIM_SUFFIX) < prompt.index(FIM_MIDDLE)
    assert prompt.endswith(FIM_MIDDLE)
    assert prompt.split(FIM_PREFIX)[1].split(FIM_SUFFIX)[0] == ctx.prefix
    req = instruction_request(ctx)
    assert "<CURSOR>" in req.input and req.conversation is None
    assert ctx.header == "" or ctx.header in req.context


# ----------------------------------------------------------------- post-processing


def test_no_duplicated_suffix_when_the_reply_rewrites_the_closing_bracket() -> None:
    ctx, text = ctx_at("def f(xs):\n    print(|)\n")
    s = finalize(ctx, "len(xs))")
    assert s is not None and s.end == ctx.offset + 1  # the ")" is in the item's range
    assert apply(text, s) == "def f(xs):\n    print(len(xs))\n"
    s2 = finalize(ctx, "len(xs)")  # the model left the ")" to the suffix
    assert s2 is not None and s2.end == s2.start
    assert apply(text, s2) == "def f(xs):\n    print(len(xs))\n"


def test_echo_of_typed_prefix_is_removed() -> None:
    ctx, text = ctx_at("def f(xs):\n    total = su|\n")
    s = finalize(ctx, "    total = sum(xs)\n    return total\n")
    assert s is not None and s.new_text == "m(xs)"
    assert apply(text, s) == "def f(xs):\n    total = sum(xs)\n"


def test_mid_line_stops_at_end_of_statement_and_blank_line_takes_the_block() -> None:
    ctx, _ = ctx_at("def f(xs):\n    n = |\n")
    s = finalize(ctx, "len(xs)\n    return n\n\ndef g():\n    pass\n")
    assert s is not None and s.new_text == "len(xs)"
    ctx2, _text2 = ctx_at("def f(xs):\n    |\n\n\ndef g():\n    pass\n")
    s2 = finalize(ctx2, "total = 0\n    for x in xs:\n        total += x\n    return total\n\n\ndef g():\n    pass\n")
    assert s2 is not None
    assert s2.new_text == "total = 0\n    for x in xs:\n        total += x\n    return total"


def test_block_opened_by_the_line_is_completed() -> None:
    ctx, _ = ctx_at("def f(xs):\n    for x in xs|\n    return 1\n")
    s = finalize(ctx, ":\n        print(x)\n    return 1\n")
    assert s is not None and s.new_text == ":\n        print(x)"


def test_reply_reaching_existing_code_is_cut() -> None:
    ctx, _ = ctx_at("def f(a, b):\n    |\n    return c\n")
    s = finalize(ctx, "c = a + b\n    return c\n")
    assert s is not None and s.new_text == "c = a + b"


def test_indentation_is_not_doubled() -> None:
    ctx, text = ctx_at("def f(a):\n    |\n")
    s = finalize(ctx, "    return a * 2")  # a chat model wrote the full indentation
    assert s is not None and apply(text, s) == "def f(a):\n    return a * 2\n"
    s2 = finalize(ctx, "return a * 2")  # a FIM model did not
    assert s2 is not None and apply(text, s2) == "def f(a):\n    return a * 2\n"


def test_fences_and_markers_are_stripped() -> None:
    assert clean_reply("```python\nx = 1\n```\nSome prose") == "x = 1"
    assert clean_reply("x = 1<|endoftext|>garbage") == "x = 1"
    ctx, _ = ctx_at("x = |\n")
    assert finalize(ctx, "") is None and finalize(ctx, "```\n```") is None


def test_unit_complete_detects_the_boundary_while_streaming() -> None:
    ctx, _ = ctx_at("def f(xs):\n    n = |\n")
    assert not unit_complete(ctx, "len(x")
    assert unit_complete(ctx, "len(xs)\n")
    ctx2, _ = ctx_at("def f(xs):\n    |\n")
    assert not unit_complete(ctx2, "a = 1\n    b = 2\n")
    assert unit_complete(ctx2, "a = 1\n    b = 2\n\ndef g")


line = st.text(st.sampled_from("abc xy=+()[]:,.#'\""), max_size=30)


@given(before=line, after=line, reply=st.text(st.sampled_from("abc xy=+()[]:,.\n    "), max_size=80))
def test_finalize_never_touches_text_outside_its_line_and_never_repeats_the_prefix(before: str, after: str, reply: str) -> None:
    after = after.replace("\n", "")
    text = f"def f():\n    {before}|{after}\n    return 0\n"
    ctx, plain = ctx_at(text.replace("|", "\x00", 1).replace("|", "").replace("\x00", "|"))
    s = finalize(ctx, reply)
    if s is None:
        return
    assert s.start == ctx.offset
    assert ctx.offset <= s.end <= ctx.offset + len(ctx.line_rest)  # only the rest of the line
    new = apply(plain, s)
    assert new.startswith(plain[: ctx.offset]) and new.endswith(plain[s.end :])
    assert s.new_text.strip()
    if ctx.line_prefix.strip():
        assert not s.new_text.startswith(ctx.line_prefix)


# ----------------------------------------------------------------- cache


def test_cache_serves_typed_through_characters_and_misses_on_departure() -> None:
    text = "def f(xs):\n    n = \n"
    offset = text.index("n = ") + 4
    cache = SuggestionCache()
    line_start = text.index("    n")
    cache.put("u", text, line_start, Suggestion(offset, offset, "len(xs)"))
    typed = text[:offset] + "le" + text[offset:]
    hit = cache.lookup("u", typed, offset + 2)
    assert hit is not None and hit[1] == Suggestion(offset + 2, offset + 2, "n(xs)")
    assert cache.lookup("u", text[:offset] + "lo" + text[offset:], offset + 2) is None
    assert cache.entry("u") is None  # an edit that departs drops the entry
    cache.put("u", text, line_start, Suggestion(offset, offset, "len(xs)"))
    assert cache.lookup("u", text[:offset] + "len(xs)" + text[offset:], offset + 7) is None  # fully typed
    cache.put("u", text, line_start, Suggestion(offset, offset, "len(xs)"))
    assert cache.lookup("u", "# edit\n" + text[:offset] + "l" + text[offset:], offset + 8) is None  # edit above


@given(suggestion=st.text(st.sampled_from("abc()=+ \n"), min_size=1, max_size=20), data=st.data())
def test_cache_hit_plus_rest_equals_the_original_suggestion(suggestion: str, data: st.DataObject) -> None:
    text = "x = \ny = 2\n"
    offset = 4
    cache = SuggestionCache()
    cache.put("u", text, 0, Suggestion(offset, offset, suggestion))
    k = data.draw(st.integers(0, len(suggestion)))
    typed = suggestion[:k]
    hit = cache.lookup("u", text[:offset] + typed + text[offset:], offset + k)
    if hit is None:
        assert not suggestion[k:].strip()
    else:
        assert typed + hit[1].new_text == suggestion


# ----------------------------------------------------------------- coalescing


def test_a_new_request_cancels_the_one_in_flight() -> None:
    async def main() -> None:
        latest = LatestOnly()
        cancelled: list[int] = []

        async def work(i: int) -> int:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                cancelled.append(i)
                raise
            return i

        tasks = []
        for i in range(5):
            tasks.append(asyncio.ensure_future(latest.run("doc", lambda i=i: work(i))))
            await asyncio.sleep(0.005)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[-1] == 4
        assert all(isinstance(r, Superseded) for r in results[:-1])
        assert sorted(cancelled) == [0, 1, 2, 3]
        # Different documents do not cancel each other.
        a = asyncio.ensure_future(latest.run("a", lambda: work(10)))
        b = asyncio.ensure_future(latest.run("b", lambda: work(11)))
        assert await asyncio.gather(a, b) == [10, 11]

    asyncio.run(main())


def test_cancelling_the_caller_cancels_the_work() -> None:
    async def main() -> None:
        latest = LatestOnly()
        flag: list[str] = []

        async def work() -> None:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                flag.append("cancelled")
                raise

        caller = asyncio.ensure_future(latest.run("doc", work))
        await asyncio.sleep(0.01)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await asyncio.sleep(0)
        assert flag == ["cancelled"]

    asyncio.run(main())
