"""Test-verified proposals: run a command on isolated copies of the repository.

`spark-ls check --verify "pytest -x -q"` (and the editor's ``verify_command``) runs the command
once on a copy of the unchanged files (the baseline) and once per proposal on a copy with only
that proposal applied. The user's tree is never written: each parallel slot is a temporary copy
of the files git lists (tracked plus untracked, not ignored; outside git, every file outside
hidden directories), and a proposal's files are restored in the slot after its run.

Comparing a run with the baseline:

- ``verified``: the baseline fails and the proposal makes the command pass;
- ``better``: both fail, with fewer failing tests (a pytest/unittest-style summary is read);
- ``same``: the same outcome (and failure count, when known);
- ``changed``: both fail, failure counts unknown, different exit codes;
- ``worse``: the proposal breaks a passing command, fails more tests, or times out.

A ``worse`` proposal is dropped (``refused: breaks tests``); a behaviour-preserving action
(simplify, inline, comprehension, extract, docs, types) is dropped on any result but ``same``.
No LSP types here: the server uses :class:`Verifier` too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_VERIFY_TIMEOUT = 300.0
_TAIL_CHARS = 2000
# pytest: "1 failed, 3 passed" / "2 errors"; unittest: "FAILED (failures=1, errors=2)".
_PYTEST_COUNTS = re.compile(r"(\d+) (failed|errors?)\b")
_UNITTEST_COUNTS = re.compile(r"\b(failures|errors)=(\d+)")
_PYTEST_SUMMARY = re.compile(r"\b\d+ (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)\b")
_PYTEST_TIME = re.compile(r"\bin [\d.]+s\b")
_SKIPPED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                 ".venv", "venv", "node_modules", ".tox"}


class VerifyError(Exception):
    """The verify command could not be used at all (no files, baseline timed out, ...)."""


@dataclass(frozen=True)
class RunResult:
    returncode: int | None  # None: timed out (killed)
    failures: int | None  # failing tests read from the output's summary, when present
    seconds: float
    tail: str  # the end of the combined output

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def describe(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.passed:
            return "passing"
        if self.failures is not None:
            return f"failing ({self.failures} failed)"
        return f"failing (exit {self.returncode})"


def count_failures(output: str) -> int | None:
    """Failed tests plus errors from the last pytest or unittest summary in ``output``."""
    lines = [line.strip().strip("=").strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines[-30:]):
        if _PYTEST_SUMMARY.search(line) and _PYTEST_TIME.search(line):
            return sum(int(n) for n, _ in _PYTEST_COUNTS.findall(line))
        if "no tests ran" in line:
            return 0
        if line.startswith("FAILED ("):
            return sum(int(n) for _, n in _UNITTEST_COUNTS.findall(line))
        if line == "OK" or line.startswith("OK ("):
            return 0
    return None


def compare(baseline: RunResult, candidate: RunResult) -> str:
    """How ``candidate`` (a proposal's run) relates to ``baseline``: see the module docstring."""
    if candidate.timed_out:
        return "same" if baseline.timed_out else "worse"
    if baseline.timed_out:
        return "verified" if candidate.passed else "better"
    if baseline.passed:
        return "same" if candidate.passed else "worse"
    if candidate.passed:
        return "verified"
    if baseline.failures is not None and candidate.failures is not None:
        if candidate.failures > baseline.failures:
            return "worse"
        return "better" if candidate.failures < baseline.failures else "same"
    return "same" if candidate.returncode == baseline.returncode else "changed"


def verdict(outcome: str, *, preserves_behaviour: bool) -> bool:
    """Whether a proposal with ``outcome`` is kept."""
    if preserves_behaviour:
        return outcome == "same"
    return outcome != "worse"


def listed_files(root: Path) -> list[str]:
    """The files a copy of ``root`` gets (POSIX paths relative to ``root``)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
        cwd=root, capture_output=True, check=False,
    )
    if out.returncode == 0:
        names = [n for n in out.stdout.decode("utf-8", errors="surrogateescape").split("\0") if n]
        return [n for n in names if (root / n).is_file() or (root / n).is_symlink()]
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            found.append((Path(directory) / name).relative_to(root).as_posix())
    return found


def _copy_tree(root: Path, names: Sequence[str], target: Path) -> None:
    for name in names:
        source = root / name
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            link = os.readlink(source)
            # A link pointing outside the tree would let the command write there: copy content.
            resolved = source.resolve()
            if os.path.isabs(link) or not resolved.is_relative_to(root.resolve()):
                if resolved.is_file():
                    shutil.copyfile(resolved, dest)
                continue
            os.symlink(link, dest)
        else:
            shutil.copy2(source, dest)


class Verifier:
    """Runs ``command`` (a shell command line) in up to ``jobs`` private copies of ``root``."""

    def __init__(self, root: Path, command: str, *, timeout: float = DEFAULT_VERIFY_TIMEOUT, jobs: int = 1,
                 environ: Mapping[str, str] | None = None) -> None:
        if not command.strip():
            raise VerifyError("the verify command is empty")
        self.root = Path(root).resolve()
        self.command = command
        self.timeout = timeout
        self.jobs = max(1, jobs)
        self._environ = dict(os.environ if environ is None else environ)
        self._names: list[str] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._slots: asyncio.Queue[Path] | None = None
        self._made = 0
        self._baseline: RunResult | None = None
        self._baseline_lock = asyncio.Lock()
        self._active: set[asyncio.subprocess.Process] = set()

    # ------------------------------------------------------------------ slots

    def _ensure(self) -> asyncio.Queue[Path]:
        if self._slots is None:
            self._names = listed_files(self.root)
            if not self._names:
                raise VerifyError(f"no files to copy from {self.root}")
            self._workdir = tempfile.TemporaryDirectory(prefix="spark-ls-verify-")
            self._slots = asyncio.Queue()
        return self._slots

    async def _take(self) -> Path:
        slots = self._ensure()
        if slots.empty() and self._made < self.jobs:
            self._made += 1
            assert self._workdir is not None and self._names is not None
            slot = Path(self._workdir.name) / f"slot{self._made}"
            await asyncio.to_thread(_copy_tree, self.root, self._names, slot)
            return slot
        return await slots.get()

    def close(self) -> None:
        for process in list(self._active):
            _kill(process)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
            self._slots = None

    # ------------------------------------------------------------------ runs

    async def baseline(self) -> RunResult:
        """The command's result on the unchanged files (run once, then remembered)."""
        async with self._baseline_lock:
            if self._baseline is None:
                self._baseline = await self.run({})
            return self._baseline

    async def run(self, changes: Mapping[str, bytes]) -> RunResult:
        """Run the command in a copy where each ``rel_path`` in ``changes`` has the given bytes."""
        slot = await self._take()
        saved: dict[str, bytes | None] = {}
        try:
            for rel_path, data in changes.items():
                path = _inside(slot, rel_path)
                saved[rel_path] = path.read_bytes() if path.is_file() else None
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            return await self._execute(slot)
        finally:
            for rel_path, before in saved.items():
                path = _inside(slot, rel_path)
                if before is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(before)  # the slot's original bytes, not the change
            assert self._slots is not None
            self._slots.put_nowait(slot)

    async def _execute(self, slot: Path) -> RunResult:
        env = dict(self._environ)
        # The copy's modules first (an editable install would otherwise import the user's tree),
        # and no bytecode caches: a same-size edit within the same second would reuse stale .pyc.
        env["PYTHONPATH"] = str(slot) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["SPARK_LS_VERIFY"] = "1"
        started = time.perf_counter()
        process = await asyncio.create_subprocess_shell(
            self.command, cwd=slot, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
        self._active.add(process)
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=self.timeout)
        except TimeoutError:
            _kill(process)
            await process.wait()
            return RunResult(None, None, time.perf_counter() - started, "")
        except asyncio.CancelledError:
            _kill(process)
            raise
        finally:
            self._active.discard(process)
        text = output.decode("utf-8", errors="replace")
        return RunResult(process.returncode, count_failures(text), time.perf_counter() - started,
                         text[-_TAIL_CHARS:])


def _inside(slot: Path, rel_path: str) -> Path:
    path = (slot / rel_path).resolve()
    if not path.is_relative_to(slot.resolve()):
        raise VerifyError(f"{rel_path}: outside the copied tree")
    return path


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            process.kill()
        except ProcessLookupError:
            pass


# ------------------------------------------------------------------ check reports

PRESERVING_DEFAULT = frozenset({"simplify", "inline-variable", "loop-to-comprehension", "loop-to-iterator",
                                "extract-function", "add-types", "add-docstring", "add-doc-comment"})


def describe_outcome(command: str, baseline: RunResult, candidate: RunResult) -> str:
    return f"`{command}`: {baseline.describe()} -> {candidate.describe()}"


async def verify_report(
    report: Any,
    verifier: Verifier,
    *,
    preserves_behaviour: Callable[[str], bool],
    log: Callable[[str], None] = lambda message: None,
) -> None:
    """Run ``verifier`` on every proposal of a check report (``spark_ls.check.report.CheckReport``);
    drop the ones that make the result worse (or, for behaviour-preserving actions, change it),
    mark the rest, and re-merge each file's accepted proposals."""
    from spark_ls.check.report import Refusal
    from spark_ls.check.runner import merge_proposals

    report.verify_command = verifier.command
    if not report.proposals:
        return
    baseline = await verifier.baseline()
    report.verify_baseline = baseline.describe()
    if baseline.timed_out:
        raise VerifyError(f"--verify: `{verifier.command}` timed out after {verifier.timeout:g}s on the "
                          "unchanged files; raise --verify-timeout")
    log(f"verify: `{verifier.command}` on the unchanged files: {baseline.describe()} ({baseline.seconds:.1f}s)")

    async def one(result: Any, proposal: Any) -> tuple[Any, Any, str, str]:
        data = result.original.encode(proposal.new_text)
        run = await verifier.run({result.source.rel_path: data})
        outcome = compare(baseline, run)
        return result, proposal, outcome, describe_outcome(verifier.command, baseline, run)

    runs = await asyncio.gather(*(one(r, p) for r in report.files for p in r.proposals))
    by_file: dict[int, list[tuple[Any, str, str]]] = {}
    for result, proposal, outcome, detail in runs:
        by_file.setdefault(id(result), []).append((proposal, outcome, detail))
    for result in report.files:
        checked = by_file.get(id(result))
        if not checked:
            continue
        kept = []
        for proposal, outcome, detail in checked:
            preserving = preserves_behaviour(proposal.target.action_id)
            if verdict(outcome, preserves_behaviour=preserving):
                proposal.verified = outcome == "verified"
                proposal.tests = detail
                kept.append(proposal)
                continue
            reason = ("breaks tests: " if outcome == "worse" else "changes test results: ") + detail
            result.refusals.append(Refusal(proposal.target, "refused", reason))
            log(f"refused {proposal.target.label}: {reason}")
        merged, accepted, conflicts = merge_proposals(result.original.text, kept)
        result.proposals = accepted
        result.refusals += conflicts
        result.refusals.sort(key=lambda r: r.target.order)
        result.new_text = merged if accepted else None
