"""Issue #11's reproductions (1-3, 6-8) as regression tests: a model reply is untrusted input,
and the engine, not the model, guarantees that what is offered changes only the target.

Reproductions 1 and 3 drive `python -m spark_ls check` in a subprocess against the fake endpoint
speaking the real wire protocol (a scope-format model double); the others exercise the engine
(``apply_reply``) in both edit formats, as every resolve and every `check` target does.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from check_helpers import git, make_repo, run_check
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

from spark_ls.context.languages import language_for
from spark_ls.diffs import PatchRefused, apply_reply, check_combined, unified_diff

PYTHON = language_for(path="x.py")

SYN_PY = 'def greet(name):\n    print("hello, " + name\n\ndef add(a, b):\n    return a + b\n'
GREET_FIXED = 'def greet(name):\n    print("hello, " + name)\n'


class ScopeModel:
    """A scope-format model: answers "Rewrite the function `NAME`" with ``replies[NAME]``
    (a callable of the task text, or a string), fenced as small models do."""

    def __init__(self, replies: dict[str, Any]) -> None:
        self.replies = replies
        self.tasks: list[tuple[str, str]] = []

    def __call__(self, body: dict[str, Any]) -> str:
        text = input_text(body.get("input"))
        found = re.search(r"Rewrite the \w+ `([^`]+)`", text)
        name = found.group(1) if found else ""
        task = text.rsplit("Task:", 1)[-1]
        self.tasks.append((name, task))
        reply = self.replies.get(name, "")
        code = reply(task) if callable(reply) else reply
        return f"Here is the fixed code:\n```python\n{code}```\n" if code else ""


@pytest.fixture
def syn_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"syn.py": SYN_PY.encode()})


def _check(repo: Path, model: ScopeModel, *args: str) -> subprocess.CompletedProcess[str]:
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as endpoint:
        return run_check(repo, endpoint.base_url, "--edit-format", "scope", *args, "syn.py")


# ------------------------------------------------------------------ 1: the fix that deleted `add`


def test_repro1_syntax_fix_never_deletes_the_next_function(syn_repo: Path) -> None:
    model = ScopeModel({"greet": GREET_FIXED})
    result = _check(syn_repo, model)
    assert result.returncode in (0, 1), result.stderr
    assert model.tasks, "the model was never asked"
    patch = result.stdout
    assert "-def add(a, b):" not in patch and "-    return a + b" not in patch
    if patch:
        (syn_repo / "fix.patch").write_text(patch)
        git(syn_repo, "apply", "fix.patch")
    text = (syn_repo / "syn.py").read_text()
    assert "def add(a, b):\n    return a + b\n" in text
    # Whatever the context picked as greet's region, the outcome is the old file or the fix.
    assert text in (SYN_PY, SYN_PY.replace('"hello, " + name\n', '"hello, " + name)\n'))


def test_repro1_fix_mode_writes_nothing_that_removes_add(syn_repo: Path) -> None:
    result = _check(syn_repo, ScopeModel({"greet": GREET_FIXED}), "--fix", "--format", "json")
    assert result.returncode in (0, 1), result.stderr
    text = (syn_repo / "syn.py").read_text()
    assert "def add(a, b):\n    return a + b\n" in text
    if text != SYN_PY:  # written: then it is the fix, and it compiles
        compile(text, "syn.py", "exec")


def test_repro1_engine_refuses_a_region_that_swallowed_a_sibling() -> None:
    """Defence in depth: even given tree-sitter's region for greet (rows 0-4, `add` inside), the
    engine refuses a result that removes `add`, in both formats, naming it."""
    swallowed = (0, 4)
    with pytest.raises(PatchRefused, match="`add`"):
        apply_reply(SYN_PY, f"```python\n{GREET_FIXED}```", path="syn.py", mode="scope",
                    allowed=[swallowed], scope=swallowed, language=PYTHON)
    diff = unified_diff(SYN_PY, GREET_FIXED, "syn.py")
    with pytest.raises(PatchRefused, match="`add`"):
        apply_reply(SYN_PY, diff, path="syn.py", mode="diff", allowed=[swallowed], scope=swallowed, language=PYTHON)
    # A fix that leaves `add` alone still applies inside the same (too large) region.
    fixed = SYN_PY.replace('"hello, " + name\n', '"hello, " + name)\n')
    good = unified_diff(SYN_PY, fixed, "syn.py")
    assert apply_reply(SYN_PY, good, path="syn.py", mode="diff", allowed=[swallowed], scope=swallowed,
                       language=PYTHON) == fixed


# ------------------------------------------------------------------ 2: a shadowing definition

SHOP_PY = (
    "def discount(price, percent):\n"
    "    return price * (1 - percent / 100)\n"
    "\n\n"
    "def apply_discounts(prices, percent):\n"
    "    return [discount(p, percent) for p in prices]\n"
    "\n\n"
    "def total(prices):\n"
    "    return sum(prices)\n"
)
APPLY = (4, 5)
SHADOW = "def discount(price, percent, cap=100):\n    return price - price * min(percent, cap) / 200\n"
FIXED_APPLY = "def apply_discounts(prices, percent):\n    return [discount(p, min(percent, 100)) for p in prices]\n"


@pytest.mark.parametrize("where", ["after", "before"])
def test_repro2_a_shadowing_definition_is_refused_in_scope_replies(where: str) -> None:
    code = FIXED_APPLY + "\n\n" + SHADOW if where == "after" else SHADOW + "\n\n" + FIXED_APPLY
    for new_definitions in (False, True):  # even an action that may add definitions may not shadow
        with pytest.raises(PatchRefused, match="`discount`.*line 1"):
            apply_reply(SHOP_PY, f"```python\n{code}```", path="shop.py", mode="scope", allowed=[APPLY],
                        scope=APPLY, language=PYTHON, new_definitions=new_definitions)


def test_repro2_a_shadowing_definition_is_refused_in_diff_replies() -> None:
    new = SHOP_PY.replace(
        "    return [discount(p, percent) for p in prices]\n",
        "    return [discount(p, min(percent, 100)) for p in prices]\n\n\n" + SHADOW,
    )
    with pytest.raises(PatchRefused, match="`discount`"):
        apply_reply(SHOP_PY, unified_diff(SHOP_PY, new, "shop.py"), path="shop.py", mode="diff",
                    allowed=[APPLY], scope=APPLY, language=PYTHON)


def test_new_helpers_only_for_actions_that_declare_them() -> None:
    helper = "def _clamp(percent):\n    return min(percent, 100)\n\n\n"
    code = helper + FIXED_APPLY.replace("min(percent, 100)", "_clamp(percent)")
    reply = f"```python\n{code}```"
    with pytest.raises(PatchRefused, match="new definition `_clamp`"):
        apply_reply(SHOP_PY, reply, path="shop.py", mode="scope", allowed=[APPLY], scope=APPLY, language=PYTHON)
    result = apply_reply(SHOP_PY, reply, path="shop.py", mode="scope", allowed=[APPLY], scope=APPLY,
                         language=PYTHON, new_definitions=True)
    assert "def _clamp(percent):" in result and result.count("def discount(") == 1


def test_extract_function_declares_new_definitions_and_fixes_do_not() -> None:
    from spark_ls.actions.catalog import builtin_actions

    declared = {a.id for a in builtin_actions() if a.allow_new_definitions}
    assert declared == {"extract-function"}


def test_combined_proposals_may_not_define_a_name_twice() -> None:
    """--fix's gate on the merged text: two proposals that each add `_clamp` (each fine alone)."""
    one = SHOP_PY.replace("def apply_discounts", "def _clamp(p):\n    return p\n\n\ndef apply_discounts")
    both = one.replace("def total", "def _clamp(p):\n    return p\n\n\ndef total")
    check_combined(SHOP_PY, one, path="shop.py", language=PYTHON)
    with pytest.raises(PatchRefused, match="`_clamp` 2 times"):
        check_combined(SHOP_PY, both, path="shop.py", language=PYTHON)
    with pytest.raises(PatchRefused, match="compile error"):
        check_combined(SHOP_PY, SHOP_PY + "return 1\n", path="shop.py", language=PYTHON)


# ------------------------------------------------------------------ 3: one proposal per function


def test_repro3_one_proposal_per_function_naming_the_kept_action(syn_repo: Path) -> None:
    def reply(task: str) -> str:
        if "Find the bug" in task:  # fix-bug: a different rewrite of the same function
            return 'def greet(name):\n    print("hello, " + str(name))\n'
        return GREET_FIXED  # fix-diagnostic (the syntax error)

    (syn_repo / "syn.py").write_text('def greet(name):\n    print("hello, " + name\n')
    model = ScopeModel({"greet": reply})
    result = _check(syn_repo, model, "--action", "fix-bug", "--format", "json")
    report = json.loads(result.stdout)
    actions = sorted(task.split()[0] for name, task in model.tasks if name == "greet")
    assert len(actions) == 2, model.tasks  # both actions ran on greet
    assert [(p["scope_name"], p["action"]) for p in report["proposals"]] == [("greet", "fix-diagnostic")]
    (conflict,) = [r for r in report["refusals"] if r["action"] == "fix-bug"]
    assert conflict["kind"] == "conflict"
    assert "kept the fix-diagnostic proposal" in conflict["reason"]
    assert "kept the fix-diagnostic proposal" in result.stderr
    assert report["proposals"][0]["diff"].count("+    print(") == 1


# ------------------------------------------------------------------ 6: a moved import

LOCAL_IMPORT_PY = "import os\n\n\ndef dump(value):\n    import json\n    return json.dumps(value)\n\n\ndef other():\n    import json\n    return json.loads('1')\n"


def test_repro6_an_import_moved_to_module_level_is_added() -> None:
    reply = "```python\nimport json\n\n\ndef dump(value):\n    return json.dumps(value, sort_keys=True)\n```"
    result = apply_reply(LOCAL_IMPORT_PY, reply, path="m.py", mode="scope", allowed=[(3, 5), (0, 0)],
                         scope=(3, 5), language=PYTHON)
    assert result.startswith("import os\nimport json\n")  # other()'s local import binds nothing here
    assert "def dump(value):\n    return json.dumps(value, sort_keys=True)\n" in result
    run = subprocess.run([sys.executable, "-c", result + "\nprint(dump({'b': 1, 'a': 2}))\n"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.stdout == '{"a": 2, "b": 1}\n', run.stderr  # no NameError: json is imported


def test_an_import_the_file_already_has_at_module_level_is_not_repeated() -> None:
    old = "import json\n\n\ndef dump(value):\n    return json.dumps(value)\n"
    reply = "```python\nimport json\n\ndef dump(value):\n    return json.dumps(value, indent=1)\n```"
    result = apply_reply(old, reply, path="m.py", mode="scope", allowed=[(3, 4), (0, 0)], scope=(3, 4),
                         language=PYTHON)
    assert result.count("import json") == 1


# ------------------------------------------------------------------ 7: compile(), not just parse


def test_repro7_module_level_return_is_refused_by_the_compiler() -> None:
    new = SHOP_PY.replace("    return sum(prices)\n", "    return sum(prices)\nreturn 0\n")
    diff = unified_diff(SHOP_PY, new, "shop.py")
    # Without a scope (no structural check) the compiler alone refuses it.
    with pytest.raises(PatchRefused, match="'return' outside function"):
        apply_reply(SHOP_PY, diff, path="shop.py", mode="diff", allowed=[(8, 9)], language=PYTHON)
    with pytest.raises(PatchRefused):
        apply_reply(SHOP_PY, diff, path="shop.py", mode="diff", allowed=[(8, 9)], scope=(8, 9), language=PYTHON)


def test_compile_errors_tree_sitter_accepts_are_refused_and_broken_files_judged_as_before() -> None:
    generator = SHOP_PY.replace("    return sum(prices)\n", "    yield sum(prices)\n")
    assert apply_reply(SHOP_PY, unified_diff(SHOP_PY, generator, "shop.py"), path="shop.py", mode="diff",
                       allowed=[(8, 9)], language=PYTHON) == generator  # a generator is fine
    stray = SHOP_PY.replace("    return sum(prices)\n", "    return sum(prices)\n    break\n")
    with pytest.raises(PatchRefused, match="'break' outside loop"):
        apply_reply(SHOP_PY, unified_diff(SHOP_PY, stray, "shop.py"), path="shop.py", mode="diff",
                    allowed=[(8, 9)], language=PYTHON)
    # An already broken block gets no compiler verdict: a fix elsewhere in it still applies.
    broken = "def f(:\n    return 1\nx = 2\n"
    fixed = "def f():\n    return 1\nx = 2\n"
    assert apply_reply(broken, unified_diff(broken, fixed, "b.py"), path="b.py", mode="diff",
                       allowed=[(0, 1)], language=PYTHON) == fixed


# ------------------------------------------------------------------ 8: trailing example code


@pytest.mark.parametrize("gap", ["", "\n", "\n\n", "\n\n\n"])
@pytest.mark.parametrize("extra", ["print(apply_discounts([3, 1, 2], 10))\n",
                                   'if __name__ == "__main__":\n    print(apply_discounts([3], 10))\n',
                                   "assert apply_discounts([100], 10) == [90.0]\nprint('ok')\n"])
def test_repro8_trailing_statements_are_dropped_consistently(
    gap: str, extra: str, caplog: pytest.LogCaptureFixture
) -> None:
    reply = f"```python\n{FIXED_APPLY}{gap}{extra}```"
    expected = SHOP_PY.replace("def apply_discounts(prices, percent):\n    return [discount(p, percent) for p in prices]\n",
                               FIXED_APPLY)
    with caplog.at_level(logging.WARNING, logger="spark_ls.diffs"):
        result = apply_reply(SHOP_PY, reply, path="shop.py", mode="scope", allowed=[APPLY], scope=APPLY,
                             language=PYTHON)
    assert result == expected
    assert any("dropped" in record.getMessage() and "apply_discounts" in record.getMessage()
               for record in caplog.records)


def test_repro8_in_diff_format_module_level_statements_are_refused() -> None:
    new = SHOP_PY.replace("    return [discount(p, percent) for p in prices]\n",
                          "    return [discount(p, percent) for p in prices]\nprint(apply_discounts([3], 10))\n")
    with pytest.raises(PatchRefused, match="adds code outside the target `apply_discounts`"):
        apply_reply(SHOP_PY, unified_diff(SHOP_PY, new, "shop.py"), path="shop.py", mode="diff",
                    allowed=[APPLY], scope=APPLY, language=PYTHON)

