"""Fix quality on real bugs with tests, end to end through `spark-ls check`.

The corpus (bench/quality_corpus.py) is generated offline from the Python standard library:
real functions, tests derived from the original function's behaviour on sample inputs, and
single-mutation bugs (operator, comparison, off-by-one, wrong variable, missing case) that the
tests catch. Two git repositories are checked with the command users run,
`python -m spark_ls check cases --format json` (the default action, fix-bug):

- *mutants*: each proposal is applied (`git apply` of its diff) and the case's tests are run:
  fixed (all pass), improved (fewer failures), not fixed, made worse; or patch did not apply
  (spark-ls refused the reply), no proposal;
- *originals* (the unmutated functions): false-alarm rate (any proposal) and damage rate (a
  proposal that breaks a passing test).

Each repository is checked once, with `--verify "python -m pytest -q tests"`. Verification runs
after the model, so without it the proposals are the same; the ones it drops are exactly those
that raised the suite's failure count (only their case's tests can change), i.e. made the case
worse — that gives the figures without --verify from the same run.

The model is whatever the usual settings select: with no OPENAI_BASE_URL / OPENAI_API_KEY, the
embedded Qwen2.5-Coder-1.5B-Instruct (run it under `flock /tmp/heavy.lock` on a shared machine).
Environment knobs: SPARK_LS_BENCH_QUALITY_MUTANTS (mutants per function, default 1; the corpus
has up to 2), SPARK_LS_BENCH_QUALITY_STRIDE (every Nth function; default 6 with --quick, else 1),
SPARK_LS_BENCH_QUALITY_KEEP (keep the work directory and print its path).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import quality_corpus as corpus

TITLE = "Fix quality: single-mutation bugs in real stdlib functions, tests from behaviour, via spark-ls check"
REPO_ROOT = Path(__file__).resolve().parent.parent
AIDER_ANCHOR = 28.6  # Aider leaderboard, Qwen2.5-Coder-1.5B-Instruct, whole-file, first try (%)
TEST_TIMEOUT = 60.0
VERIFY = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider tests"
OUTCOMES = ("fixed", "improved", "not fixed", "made worse", "dropped by --verify", "patch did not apply",
            "no proposal", "model error")


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _make_repo(path: Path, cases: list[corpus.Case], calls: dict[str, list[str]],
               originals: dict[str, corpus.Case]) -> None:
    corpus.write(path, cases, calls, originals)
    (path / ".gitignore").write_text("__pycache__/\n*.jsonl\n")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "corpus")


def _uses_local_model() -> bool:
    transport = os.environ.get("SPARK_LS_TRANSPORT", "auto")
    if transport == "local":
        return True
    return transport == "auto" and not os.environ.get("OPENAI_BASE_URL") and not os.environ.get("OPENAI_API_KEY")


def _check(repo: Path, *args: str) -> tuple[dict[str, Any], float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "spark_ls", "check", "cases", "--format", "json", "--quiet", *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - started
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"spark-ls check failed (exit {out.returncode}): {out.stderr[-2000:]}") from None
    return report, wall, out.stderr


def _failures(repo: Path, case_id: str) -> int:
    """Failing tests of one case (all of them when the run hangs or does not report)."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"tests/test_{case_id}.py"],
            cwd=repo, capture_output=True, text=True, timeout=TEST_TIMEOUT, check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except subprocess.TimeoutExpired:
        return 10**6
    from spark_ls.check.verify import count_failures

    count = count_failures(out.stdout)
    return 10**6 if count is None else count


def _evaluate(repo: Path, report: dict[str, Any], cases: list[corpus.Case], workdir: Path) -> dict[str, str]:
    """Outcome per case id for one check report, applying each proposal alone to a copy."""
    copy = workdir / f"eval-{time.monotonic_ns()}"
    shutil.copytree(repo, copy)
    proposals = {Path(p["path"]).stem: p for p in report["proposals"]}
    refusals: dict[str, list[dict[str, Any]]] = {}
    for r in report["refusals"]:
        refusals.setdefault(Path(r["path"]).stem, []).append(r)
    outcomes: dict[str, str] = {}
    to_test: list[corpus.Case] = []
    for case in cases:
        proposal = proposals.get(case.id)
        if proposal is None:
            reasons = refusals.get(case.id, [])
            if any(r["reason"].startswith(("breaks tests", "changes test results")) for r in reasons):
                outcomes[case.id] = "dropped by --verify"
            elif any(r["kind"] == "model-error" for r in reasons):
                outcomes[case.id] = "model error"
            elif reasons:
                outcomes[case.id] = "patch did not apply"
            else:
                outcomes[case.id] = "no proposal"
            continue
        patch = copy / f"{case.id}.patch"
        patch.write_text(proposal["diff"], encoding="utf-8")
        applied = subprocess.run(["git", "apply", patch.name], cwd=copy, capture_output=True, check=False)
        patch.unlink()
        if applied.returncode != 0:
            outcomes[case.id] = "patch did not apply"
            continue
        to_test.append(case)
    with ThreadPoolExecutor(max_workers=2) as pool:
        counts = dict(zip([c.id for c in to_test], pool.map(lambda c: _failures(copy, c.id), to_test)))
    for case in to_test:
        after = counts[case.id]
        if after == 0:
            outcomes[case.id] = "fixed"
        elif after < case.failing:
            outcomes[case.id] = "improved"
        elif after == case.failing:
            outcomes[case.id] = "not fixed"
        else:
            outcomes[case.id] = "made worse"
    shutil.rmtree(copy, ignore_errors=True)
    return outcomes


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def run(quick: bool, tiny: bool = False) -> dict[str, Any]:
    if tiny:  # the smoke configuration (tests/test_bench_smoke.py) skips it, visibly
        return {"skipped": "--tiny: the quality bench drives the model over a mutation corpus with --verify; "
                "its smallest run takes minutes (python -m bench quality --quick)"}
    stride = int(os.environ.get("SPARK_LS_BENCH_QUALITY_STRIDE", "6" if quick else "1"))
    functions = corpus.FUNCTIONS[::stride]
    per_function = int(os.environ.get("SPARK_LS_BENCH_QUALITY_MUTANTS", "1"))
    originals, mutants, calls = corpus.build(per_function, functions)
    by_id = {c.id: c for c in originals}
    local = _uses_local_model()
    jobs = "1" if local else "4"
    workdir = Path(tempfile.mkdtemp(prefix="spark-ls-bench-quality-"))
    keep = bool(os.environ.get("SPARK_LS_BENCH_QUALITY_KEEP"))
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    figures: dict[str, dict[str, Any]] = {}
    try:
        for name, cases in (("mutants", mutants), ("originals", originals)):
            repo = workdir / name
            _make_repo(repo, cases, calls, by_id)
            report, wall, _ = _check(repo, "--jobs", jobs, "--verify", VERIFY)
            verified = _evaluate(repo, report, cases, workdir)
            # --verify runs after the model: without it the proposals are the same, and the ones it
            # dropped are exactly those that raised the failure count, i.e. made the case worse.
            plain = {k: "made worse" if v == "dropped by --verify" else v for k, v in verified.items()}
            figures[name] = {
                "plain": plain, "verify": verified, "wall": wall,
                "requests": report["summary"]["requests"], "model": report.get("model"),
                "errors": report["errors"], "verify_seconds": report.get("stats", {}).get("verify_seconds"),
            }
            plain_report = report
            if plain_report["errors"]:
                notes.append(f"{name}: {len(plain_report['errors'])} error(s), first: "
                             f"{plain_report['errors'][0][:200]}")
        targets: list[tuple[str, bool]] = []
        model = figures["mutants"]["model"] or figures["originals"]["model"] or "?"
        for mode, label in (("plain", "spark-ls check"), ("verify", "spark-ls check --verify")):
            outcome = figures["mutants"][mode]
            counts = {k: sum(1 for v in outcome.values() if v == k) for k in OUTCOMES}
            total = len(mutants)
            row: dict[str, Any] = {"run": label, "bugs": total}
            row.update({k: counts[k] for k in OUTCOMES})
            row["fix rate %"] = _pct(counts["fixed"], total)
            original_outcomes = figures["originals"][mode]
            proposals = sum(1 for v in original_outcomes.values()
                            if v in ("fixed", "improved", "not fixed", "made worse"))
            damaged = sum(1 for v in original_outcomes.values() if v == "made worse")
            row["correct functions"] = len(originals)
            row["false alarms %"] = _pct(proposals, len(originals))
            row["damage %"] = _pct(damaged, len(originals))
            rows.append(row)
            if mode == "plain":
                targets.append((f"false-alarm rate on correct functions <= 10% ({row['false alarms %']}%)",
                                row["false alarms %"] <= 10.0))
            else:
                targets.append((f"damage rate 0 with --verify ({row['damage %']}%)", damaged == 0))
        kinds: dict[str, list[int]] = {}
        for case in mutants:
            kinds.setdefault(case.kind, [0, 0])
            kinds[case.kind][1] += 1
            kinds[case.kind][0] += figures["mutants"]["plain"][case.id] == "fixed"
        requests = figures["mutants"]["requests"] + figures["originals"]["requests"]
        wall = figures["mutants"]["wall"] + figures["originals"]["wall"]
        notes += [
            f"model: {model} ({'embedded, --jobs 1' if local else 'endpoint from the environment, --jobs 4'}); "
            f"corpus: {len(originals)} functions from the Python {sys.version.split()[0]} standard library, "
            f"{len(mutants)} single-mutation bugs, {sum(c.tests for c in mutants)} tests"
            + (f" (1 in {stride} of the corpus's {len(corpus.FUNCTIONS)} functions)" if stride > 1 else ""),
            "fixed by kind: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(kinds.items())),
            (f"time per check: {wall / max(requests, 1):.1f} s per function ({requests} functions, "
             f"{wall:.0f} s in `spark-ls check` incl. model load and --verify)"),
            (f"fix rate anchor: Aider's leaderboard gives Qwen2.5-Coder-1.5B-Instruct {AIDER_ANCHOR}% "
             "(133 whole-program exercises, first try) — a different task; shown for scale only"),
            ("false alarm = any proposal on an unmutated function; damage = a proposal that makes a "
             "passing test fail"),
        ]
        if keep:
            notes.append(f"work directory kept: {workdir}")
        return {"rows": rows, "targets": targets, "notes": notes, "outcomes": {
            name: figures[name]["plain"] for name in figures}}
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
