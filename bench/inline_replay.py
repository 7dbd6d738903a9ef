"""Acceptance of inline completions on a replay of real edits (used by bench_inline.py).

**The edits.** Commits of a git repository (real ``git log`` / ``git show``, offline): for each
commit and Python file it modified, the lines the commit added (difflib on the parent's and the
commit's text). A line is replayed in the state the developer typed it in, top to bottom: the
commit's lines above it are there, the lines of its block below it are not typed yet, and
everything after the block is still the parent's text.

**The typing.** The line's indentation is given (editors auto-indent); then it is typed
character by character. An editor asks for a suggestion when the user pauses, which happens at
word boundaries: at the start of the line and after `` ``, ``(``, ``[``, ``{``, ``.``, ``,``,
``=``, ``:`` — unless a suggestion is still on screen that the typed characters follow
(typed-through: no new request). A suggestion is *accepted* when it is a non-empty prefix of
what the developer typed next (the rest of the line, and the lines after it in the block); its
characters then count as typed for free and the replay continues after them.

**The figures.** Per request: *exact* (the suggestion is the rest of the line — or more lines,
all right), *prefix* (right but shorter than the rest of the line), *first line* (a block whose
first line is right and the rest is not: not accepted), *wrong*, *empty*. Per line:
the share of its characters (after the indentation) that came from accepted suggestions.

The model is anything with the session interface :func:`spark_ls.inline.generate.generate`
takes (the embedded model in the benchmark; scripted doubles in tests/test_inline_replay.py).
"""

from __future__ import annotations

import ast
import difflib
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAUSE_AFTER = " ([{.,=:"


@dataclass(frozen=True)
class ReplayLine:
    commit: str
    path: str
    before: str  # the document before the line (ends with a line break)
    after: str  # the document after the line, starting with its line break
    line: str  # the line as committed, without its line break
    following: tuple[str, ...]  # the next lines of the block, as committed (typed next)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _string_lines(source: str) -> set[int]:
    """0-based lines inside multi-line strings (docstrings): prose, not code."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.end_lineno and node.end_lineno > node.lineno:
            inside.update(range(node.lineno - 1, node.end_lineno))
    return inside


def _is_code(line: str) -> bool:
    body = line.strip()
    return len(body) >= 8 and not body.startswith(("#", '"""', "'''"))


def replay_lines(
    repo: Path, rev: str = "HEAD", *, paths: Sequence[str] = (), commits: int = 40, limit: int = 12,
    per_file: int = 2,
) -> list[ReplayLine]:
    """Lines added by the last ``commits`` non-merge commits reachable from ``rev`` (touching
    ``paths``), newest first, at most ``per_file`` per commit and file, ``limit`` in all. Code
    lines only: no blank, comment or docstring lines."""
    log = _git(repo, "log", "--no-merges", "--format=%H", "-n", str(commits), rev, "--", *paths).split()
    out: list[ReplayLine] = []
    for commit in log:
        try:
            changed = _git(repo, "show", "--format=", "--name-only", "--diff-filter=M", commit, "--", *paths).split()
        except subprocess.CalledProcessError:
            continue
        for path in changed:
            if not path.endswith(".py"):
                continue
            try:
                old = _git(repo, "show", f"{commit}^:{path}")
                new = _git(repo, "show", f"{commit}:{path}")
            except subprocess.CalledProcessError:
                continue
            out.extend(_lines_of(commit, path, old, new, per_file))
            if len(out) >= limit:
                return out[:limit]
    return out


def _lines_of(commit: str, path: str, old: str, new: str, per_file: int) -> list[ReplayLine]:
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    prose = _string_lines(new)
    found: list[ReplayLine] = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, _i1, i2, j1, j2 in matcher.get_opcodes():
        if tag not in ("insert", "replace"):
            continue
        for j in range(j1, j2):
            line = new_lines[j].rstrip("\r\n")
            if j in prose or not _is_code(line) or not new_lines[j].endswith("\n"):
                continue
            before = "".join(new_lines[:j])
            after = "\n" + "".join(old_lines[i2:])
            following = tuple(x.rstrip("\r\n") for x in new_lines[j + 1 : j2])
            found.append(ReplayLine(commit, path, before, after, line, following))
            if len(found) >= per_file:
                return found
    return found


@dataclass
class Request:
    path: str
    typed: str  # the line up to the cursor
    expected: str  # the rest of the line, as the developer typed it
    got: str  # the suggestion ("" = none)
    verdict: str  # exact | prefix | first line | wrong | empty
    ms: float


@dataclass
class ReplayResult:
    requests: list[Request] = field(default_factory=list)
    lines: int = 0
    chars: int = 0  # characters of the replayed lines after their indentation
    saved: int = 0  # of those, characters that came from accepted suggestions
    typed_through: int = 0  # keystrokes that kept a shown suggestion (no request)

    def count(self, verdict: str) -> int:
        return sum(r.verdict == verdict for r in self.requests)


def judge(got: str, rest_of_line: str, following: Sequence[str]) -> str:
    """exact | prefix | first line | wrong | empty, for a suggestion ``got`` at a cursor whose
    line goes on with ``rest_of_line`` and is followed by the ``following`` lines (typed next).
    "first line": a block whose first line is the rest of the line but whose later lines are
    wrong (not accepted: the whole suggestion is not what was typed)."""
    got = got.rstrip()
    if not got.strip():
        return "empty"
    target = "\n".join((rest_of_line, *following))
    if not target.startswith(got):
        if "\n" in got and got.split("\n", 1)[0].rstrip() == rest_of_line.rstrip():
            return "first line"
        return "wrong"
    return "exact" if len(got) >= len(rest_of_line.rstrip()) else "prefix"


async def replay(
    session: Any, lines: Sequence[ReplayLine], *, language: Any, budget: int, max_requests: int,
    max_per_line: int = 4,
) -> ReplayResult:
    """Type ``lines`` keystroke by keystroke, asking ``session`` at each pause (see the module
    docstring), at most ``max_per_line`` requests per line and ``max_requests`` in all."""
    from spark_ls.context.document import snapshot_of
    from spark_ls.inline.context import build_context, stable_sections
    from spark_ls.inline.generate import generate

    result = ReplayResult()
    for rl in lines:
        if len(result.requests) >= max_requests:
            break
        result.lines += 1
        line = rl.line
        indent = len(line) - len(line.lstrip(" \t"))
        result.chars += len(line) - indent
        pos = indent
        shown: str | None = None  # a wrong suggestion still on screen, from ``shown_at``
        shown_at = pos
        asked = 0
        while pos < len(line):
            if shown is not None and shown.startswith(line[shown_at:pos]) and pos - shown_at < len(shown):
                result.typed_through += 1
            else:
                shown = None
                if (pos == indent or line[pos - 1] in PAUSE_AFTER) and asked < max_per_line and len(result.requests) < max_requests:
                    asked += 1
                    text = rl.before + line[:pos] + rl.after
                    offset = len(rl.before) + pos
                    snap = snapshot_of(text, language)
                    sections = stable_sections(snap, offset, path=rl.path, budget_tokens=budget)
                    ctx = build_context(snap, offset, path=rl.path, budget_tokens=budget, sections=sections)
                    began = time.perf_counter()
                    gen = await generate(session, ctx)
                    ms = (time.perf_counter() - began) * 1000
                    suggestion = gen.suggestion()
                    got = suggestion.new_text if suggestion is not None else ""
                    verdict = judge(got, line[pos:], rl.following)
                    result.requests.append(Request(rl.path, line[:pos].strip(), line[pos:], got, verdict, ms))
                    if verdict in ("exact", "prefix"):
                        taken = min(len(got.rstrip()), len(line) - pos)  # the rest of the block: not this line's
                        result.saved += taken
                        pos += taken
                        continue
                    if verdict in ("wrong", "first line"):
                        shown, shown_at = got, pos
            pos += 1
    return result
