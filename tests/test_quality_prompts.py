"""Fewer false alarms (issue #12): "no change" is an answer, the second look can veto a fix, and
the prompts say so — through the real `spark-ls check` command line against the fake endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from check_helpers import ScriptedModel, make_repo, run_check
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

from spark_ls.actions.catalog import builtin_actions
from spark_ls.model import prompts

SOURCE = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


def _repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"mathx.py": SOURCE.encode()})


@pytest.mark.parametrize("reply", ["NO CHANGE", "No change.", "```python\nNO CHANGE\n```", ""])
def test_no_change_reply_is_no_proposal_and_no_refusal(tmp_path: Path, reply: str) -> None:
    repo = _repo(tmp_path)
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=lambda body: reply) as ep:
        for edit_format in ("diff", "scope"):
            result = run_check(repo, ep.base_url, "mathx.py", "--format", "json", "--edit-format", edit_format)
            report = json.loads(result.stdout)
            assert result.returncode == 0, result.stderr
            assert report["proposals"] == [] and report["refusals"] == []


@pytest.mark.parametrize("verdict", ["\n# No change needed\n", "\n```\nNo change.\n", ""])
def test_a_rewrite_that_says_no_change_is_no_change(tmp_path: Path, verdict: str) -> None:
    # The embedded model's habit on correct code: it rewrites the function anyway and adds
    # "# No change" after it; its verdict is the words, not the rewrite.
    repo = _repo(tmp_path)
    reply = "```python\ndef add(a, b):\n    return b + a\n" + verdict + ("```\n" if "```" not in verdict else "")
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=lambda body: reply) as ep:
        result = run_check(repo, ep.base_url, "mathx.py", "--format", "json", "--edit-format", "scope",
                           "--action", "fix-bug")
    report = json.loads(result.stdout)
    names = {p["scope_name"] for p in report["proposals"]}
    assert names == (set() if verdict else {"add"}), result.stderr
    assert all("No change" not in p["diff"] for p in report["proposals"])


def test_a_function_named_no_change_is_still_code(tmp_path: Path) -> None:
    assert not prompts.is_no_change("def no_change():\n    return 1\n")
    assert not prompts.is_no_change("no change needed, but also rename x")
    # A comment the code already had is code, not a verdict.
    assert not prompts.says_no_change("def f():\n    # no change needed\n    return 2\n",
                                      "def f():\n    # no change needed\n    return 1\n")


class Reviewer:
    """The scripted model for fixes, plus a second look answering ``verdicts[function name]``."""

    def __init__(self, repo: Path, verdicts: dict[str, str]) -> None:
        self.fixer = ScriptedModel(repo, fixes={"mathx.py": [("a - b", "a + b"), ("a * b", "a * b + 1")]})
        self.verdicts = verdicts
        self.looks: list[str] = []

    def __call__(self, body: dict[str, Any]) -> str:
        if "You review a proposed change" in str(body.get("instructions")):
            text = input_text(body.get("input"))
            name = next(n for n in self.verdicts if f"`{n}`" in text)
            self.looks.append(text)
            return self.verdicts[name]
        return self.fixer(body)


def test_second_look_vetoes_a_fix_it_rejects(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    reviewer = Reviewer(repo, {"add": "YES", "mul": "NO, the original was correct."})
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=reviewer) as ep:
        result = run_check(repo, ep.base_url, "mathx.py", "--format", "json", "--second-look")
    report = json.loads(result.stdout)
    assert [p["scope_name"] for p in report["proposals"]] == ["add"]
    assert len(reviewer.looks) == 2
    look = next(t for t in reviewer.looks if "`add`" in t)
    assert "return a - b" in look and "return a + b" in look  # before and after are shown


def test_second_look_is_off_by_default(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    reviewer = Reviewer(repo, {"add": "NO", "mul": "NO"})
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=reviewer) as ep:
        result = run_check(repo, ep.base_url, "mathx.py", "--format", "json")
        via_env = run_check(repo, ep.base_url, "mathx.py", "--format", "json",
                            env={"SPARK_LS_SECOND_LOOK": "true"})
    assert {p["scope_name"] for p in json.loads(result.stdout)["proposals"]} == {"add", "mul"}
    assert json.loads(via_env.stdout)["proposals"] == []


def test_prompts_make_no_change_the_expected_answer() -> None:
    for template in prompts.TEMPLATES.values():
        text = " ".join(template.instructions.split())
        assert "Most code you are shown is correct" in text, template.family
        assert ("reply with exactly NO CHANGE" in text) if template.edit_format == "scope" \
            else ("reply with nothing at all" in text), template.family
    fix_bug = next(a for a in builtin_actions() if a.id == "fix-bug")
    assert "If there is no definite bug, make no change." in fix_bug.instruction
    for template in prompts.TEMPLATES.values():  # the rules for a minimal bug fix, shared by all requests
        assert "no added checks, guards, error handling" in " ".join(template.instructions.split())


def test_behaviour_preserving_actions_say_so() -> None:
    actions = {a.id: a for a in builtin_actions()}
    preserving = {a for a, spec in actions.items() if spec.preserves_behaviour}
    assert {"simplify", "inline-variable", "loop-to-comprehension", "loop-to-iterator",
            "extract-function"} <= preserving
    assert not actions["fix-bug"].preserves_behaviour and not actions["fix-diagnostic"].preserves_behaviour
    for action_id in preserving:
        text = actions[action_id].instruction
        assert "must stay exactly the same" in text or "Change nothing else" in text, action_id


LINT_PY = ("def check(x):\n    if x == None:\n        return 1\n    return 0\n\n\n"
           "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b + 0\n")


def test_default_ci_action_set(tmp_path: Path) -> None:
    """--diagnostics alone: only the findings; with --changed-since: plus fix-bug on the changed
    functions only; with neither: fix-bug everywhere."""
    import subprocess

    from check_helpers import git

    repo = make_repo(tmp_path / "repo", {"lint_me.py": LINT_PY.encode()})
    (repo / "lint_me.py").write_text(LINT_PY.replace("return a - b", "return a - b  # changed"))
    git(repo, "commit", "-qam", "change add")
    lint = subprocess.run(["ruff", "check", "--no-cache", "--isolated", "--select", "E711", "--output-format",
                           "json", "."], cwd=repo, capture_output=True, text=True, check=False)
    findings = tmp_path / "ruff.json"
    findings.write_text(lint.stdout)
    fixes = {"lint_me.py": [("x == None", "x is None"), ("a - b", "a + b"), ("a * b + 0", "a * b")]}

    def proposals(*args: str) -> list[tuple[str, str]]:
        with ModelEndpoint(api_key=TEST_API_KEY, reply_for=ScriptedModel(repo, fixes=fixes)) as ep:
            result = run_check(repo, ep.base_url, "--format", "json", *args)
        return sorted((p["action"], p["scope_name"]) for p in json.loads(result.stdout)["proposals"])

    assert proposals("--diagnostics", str(findings)) == [("fix-diagnostic", "check")]
    assert proposals("--diagnostics", str(findings), "--changed-since", "HEAD~1") == [("fix-bug", "add")]
    assert proposals() == [("fix-bug", "add"), ("fix-bug", "check"), ("fix-bug", "mul")]


def test_a_bug_fix_that_changes_no_code_is_no_proposal(tmp_path: Path) -> None:
    # Comments, docstrings and layout are not a bug fix: fix-bug drops them; the real fix stays.
    repo = _repo(tmp_path)
    fixes = {"mathx.py": [("def add(a, b):\n    return a - b", 'def add(a, b):\n    """Add."""\n    return a - b  # sum'),
                          ("return a * b", "return a*b")]}
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=ScriptedModel(repo, fixes=fixes)) as ep:
        cosmetic = json.loads(run_check(repo, ep.base_url, "mathx.py", "--format", "json").stdout)
        docs = json.loads(run_check(repo, ep.base_url, "mathx.py", "--format", "json",
                                    "--action", "add-docstring").stdout)
    assert cosmetic["proposals"] == [] and cosmetic["refusals"] == []
    assert [p["scope_name"] for p in docs["proposals"]] == ["add", "mul"]  # other actions may change layout


AVERAGE_PY = '''\
def average(numbers):
    """Return the arithmetic mean of a non-empty list of numbers."""
    total = 0
    for i in range(len(numbers) - 1):
        total += numbers[i]
    return total / len(numbers)


def first(items):
    """The first item of a non-empty list."""
    return items[0]


def clamp(x, low, high):
    if x < low:
        raise ValueError("below")
    return min(x, high)
'''


def test_a_bug_fix_keeps_its_fix_but_not_the_guards_it_was_told_not_to_add(tmp_path: Path) -> None:
    # The embedded model's habit on examples/buggy.py: the off-by-one fixed *and* an unrequested
    # `if not numbers: raise ValueError` added although the docstring says "non-empty".
    repo = make_repo(tmp_path / "repo", {"stats.py": AVERAGE_PY.encode()})
    guard = "    if not numbers:\n        raise ValueError('empty list')\n"
    fixes = {"stats.py": [
        ("    total = 0\n    for i in range(len(numbers) - 1):", guard + "    total = 0\n    for i in range(len(numbers)):"),
        ('    return items[0]', ("    assert items, 'empty'\n    if not isinstance(items, list):\n"
                               "        raise TypeError('not a list')\n    return items[0]")),
        # Correcting an existing guard's condition is a fix, not an added guard.
        ("    if x < low:", "    if x <= low:"),
    ]}
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=ScriptedModel(repo, fixes=fixes)) as ep:
        result = run_check(repo, ep.base_url, "stats.py", "--format", "json")
    report = json.loads(result.stdout)
    by_name = {p["scope_name"]: p["diff"] for p in report["proposals"]}
    assert sorted(by_name) == ["average", "clamp"], result.stderr  # `first`: only guards, no proposal
    added = [line for line in by_name["average"].splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added == ["+    for i in range(len(numbers)):"]
    assert "+    if x <= low:" in by_name["clamp"]
    assert report["refusals"] == []
