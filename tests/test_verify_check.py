"""`spark-ls check --verify CMD` end to end: the real command line, a real git repository with a
real pytest suite, and the fake model endpoint speaking the real wire protocol. A proposal that
breaks a test is dropped, one that turns the suite green is marked verified, and the user's tree
(bytes and `git status`) is never touched."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import ScriptedModel, run_check
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint
from verify_helpers import MATH_PY, PYTEST, tree_state, verify_repo

from spark_ls.check.verify import RunResult, compare, count_failures


def _check(repo: Path, fixes: dict[str, list[tuple[str, str]]], *args: str) -> subprocess.CompletedProcess[str]:
    model = ScriptedModel(repo, fixes=fixes)
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        return run_check(repo, ep.base_url, "mathx.py", *args)


FIX_AND_BREAK = {"mathx.py": [("return a - b", "return a + b"), ("return a * b", "return a ** b")]}


def test_breaking_proposal_dropped_fixing_one_verified_tree_untouched(tmp_path: Path) -> None:
    repo = verify_repo(tmp_path)
    before = tree_state(repo)
    result = _check(repo, FIX_AND_BREAK, "--verify", PYTEST, "--format", "json", "--jobs", "2")
    assert tree_state(repo) == before  # bytes and git status (no stray files, no caches)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    proposals = {p["scope_name"]: p for p in report["proposals"]}
    assert set(proposals) == {"add"}
    assert proposals["add"]["verified"] is True
    assert "failing (1 failed) -> passing" in proposals["add"]["tests"]
    refused = {r["reason"] for r in report["refusals"]}
    assert any(r.startswith("breaks tests: ") and "failing (2 failed)" in r for r in refused), refused
    assert report["summary"]["verified"] == 1
    assert "refused" in result.stderr and "breaks tests" in result.stderr


def test_without_verify_both_proposals_are_made(tmp_path: Path) -> None:
    # The control for the test above: the breaking proposal exists and only --verify drops it.
    repo = verify_repo(tmp_path)
    result = _check(repo, FIX_AND_BREAK, "--format", "json")
    report = json.loads(result.stdout)
    assert {p["scope_name"] for p in report["proposals"]} == {"add", "mul"}
    assert all(p["verified"] is False and p["tests"] is None for p in report["proposals"])


def test_diff_comments_and_sarif_properties_carry_verification(tmp_path: Path) -> None:
    repo = verify_repo(tmp_path)
    result = _check(repo, FIX_AND_BREAK, "--verify", PYTEST)
    assert result.returncode == 1, result.stderr
    assert "# spark-ls fix-bug add: verified (" in result.stdout
    assert "a ** b" not in result.stdout
    (repo / "fix.patch").write_text(result.stdout)
    subprocess.run(["git", "apply", "fix.patch"], cwd=repo, check=True)  # the comments do not matter
    assert "return a + b" in (repo / "mathx.py").read_text()

    repo2 = verify_repo(tmp_path / "second")
    sarif = json.loads(_check(repo2, FIX_AND_BREAK, "--verify", PYTEST, "--format", "sarif").stdout)
    results = sarif["runs"][0]["results"]
    assert len(results) == 1 and results[0]["properties"]["verified"] is True


def test_breaking_proposal_on_a_green_suite_is_dropped(tmp_path: Path) -> None:
    repo = verify_repo(tmp_path, MATH_PY.replace("a - b", "a + b"))
    before = tree_state(repo)
    result = _check(repo, {"mathx.py": [("return a * b", "return a * b + 0 * 1 - 1")]},
                    "--verify", PYTEST, "--format", "json")
    assert tree_state(repo) == before
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr  # nothing left to propose
    assert report["proposals"] == []
    assert report["refusals"][0]["reason"].startswith("breaks tests: ")
    assert "passing -> failing (1 failed)" in report["refusals"][0]["reason"]


def test_behaviour_preserving_action_dropped_when_results_change(tmp_path: Path) -> None:
    # `simplify` must not change behaviour: even "fixing" the failing test is a change it may not make.
    repo = verify_repo(tmp_path)
    fixes = {"mathx.py": [("return a - b", "return a + b"),
                          ("    result = x * 2\n    return result", "    return x * 2")]}
    result = _check(repo, fixes, "--action", "simplify", "--verify", PYTEST, "--format", "json")
    report = json.loads(result.stdout)
    kept = {p["scope_name"]: p for p in report["proposals"]}
    assert set(kept) == {"double"} and kept["double"]["verified"] is False
    reasons = [r["reason"] for r in report["refusals"]]
    assert any(r.startswith("changes test results: ") for r in reasons), reasons


def test_verify_timeout_on_the_unchanged_tree_is_an_error(tmp_path: Path) -> None:
    repo = verify_repo(tmp_path)
    before = tree_state(repo)
    command = f"{shlex.quote(sys.executable)} -c 'import time; time.sleep(30)'"
    result = _check(repo, FIX_AND_BREAK, "--verify", command, "--verify-timeout", "0.5")
    assert result.returncode == 2
    assert "timed out after 0.5s on the unchanged files" in result.stderr
    assert tree_state(repo) == before


def test_verify_runs_in_a_copy_not_the_users_tree(tmp_path: Path) -> None:
    # A command that writes into its working directory and reports where it ran.
    repo = verify_repo(tmp_path)
    before = tree_state(repo)
    marker = tmp_path / "where.txt"
    command = (f"{shlex.quote(sys.executable)} -c \"import os, pathlib; pathlib.Path('junk.txt').write_text('x'); "
               f"open({str(marker)!r}, 'a').write(os.getcwd() + chr(10))\"")
    result = _check(repo, FIX_AND_BREAK, "--verify", command, "--format", "json")
    assert result.returncode == 1, result.stderr
    assert tree_state(repo) == before
    places = set(marker.read_text().split())
    assert places and all(not Path(p).resolve().is_relative_to(repo.resolve()) for p in places)
    assert all(not Path(p).exists() for p in places)  # the copies are cleaned up


@pytest.mark.parametrize(("output", "count"), [
    ("....F\n1 failed, 4 passed in 0.12s\n", 1),
    ("===== 2 failed, 1 error, 3 passed in 1.0s =====\n", 3),
    ("===== 5 passed in 0.5s =====\n", 0),
    ("Ran 3 tests in 0.001s\n\nFAILED (failures=2, errors=1)\n", 3),
    ("Ran 3 tests in 0.001s\n\nOK\n", 0),
    ("make: *** [test] Error 1\n", None),
])
def test_failure_counts_are_read_from_test_summaries(output: str, count: int | None) -> None:
    assert count_failures(output) == count


def test_compare_outcomes() -> None:
    ok, fail1, fail2 = RunResult(0, 0, 1, ""), RunResult(1, 1, 1, ""), RunResult(1, 2, 1, "")
    hang = RunResult(None, None, 1, "")
    assert compare(fail1, ok) == "verified"
    assert compare(ok, fail1) == "worse"
    assert compare(fail1, fail2) == "worse"
    assert compare(fail2, fail1) == "better"
    assert compare(ok, hang) == "worse"
    assert compare(ok, ok) == "same"
    assert compare(RunResult(1, None, 1, ""), RunResult(2, None, 1, "")) == "changed"


def test_a_slot_gets_its_original_files_back_after_a_run(tmp_path: Path) -> None:
    """One copy serves every run: after a run with a change, the next run sees the original bytes
    (a regression: the restore wrote the change back instead of the saved original)."""
    import asyncio

    from spark_ls.check.verify import Verifier

    root = tmp_path / "project"
    root.mkdir()
    (root / "a.py").write_text("original\n")
    command = f"{shlex.quote(sys.executable)} -c \"print(open('a.py').read())\""

    async def runs() -> tuple[RunResult, RunResult]:
        verifier = Verifier(root, command, jobs=1)
        try:
            changed = await verifier.run({"a.py": b"changed\n"})
            after = await verifier.run({})
            return changed, after
        finally:
            verifier.close()

    changed, after = asyncio.run(runs())
    assert "changed" in changed.tail
    assert "original" in after.tail and "changed" not in after.tail
    assert (root / "a.py").read_text() == "original\n"
