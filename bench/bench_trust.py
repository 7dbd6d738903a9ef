"""Hostile model replies against the engine: no wrong edit, ever.

A corpus of model replies is generated offline from real code found on this machine (the Python
standard library; C, C++, JavaScript, TypeScript, Go and Rust sources shipped inside installed
packages and tools: the tree-sitter grammar wheels, the editor test dependencies, toolchain
docs). For each target function it makes replies of every flawed kind a model produces, in both
edit formats (unified diff and rewritten scope), and well-formed replies:

* drop / duplicate / reorder / rename / shadow a neighbour; a reply for the wrong function;
* truncated scopes; hunks with wrong context; whole-file replies; extra top-level code;
* a region that swallowed the next definition (as tree-sitter's error recovery does), and files
  with a syntax error near the target whose region the context picker computes;
* well-formed replies (a comment added inside the body, a line changed), as diff and scope.

The property, for every hostile reply: the result equals the old text, or differs from it only
inside the target's true lines (never a neighbour), and adds no definition next to the target.
A result that breaks it is *wrong*. Well-formed replies must give exactly the intended text.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spark_ls.context import all_scopes, language_for, snapshot_of
from spark_ls.context.picker import pick_context
from spark_ls.diffs import PatchRefused, apply_reply, unified_diff

TITLE = "hostile model replies: wrong / refused / applied"

LANGUAGES = ("python", "javascript", "typescript", "c", "cpp", "go", "rust", "java", "tsx")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_FENCE = {"python": "python", "javascript": "javascript", "typescript": "typescript", "tsx": "tsx",
          "c": "c", "cpp": "cpp", "go": "go", "rust": "rust", "java": "java"}


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _roots() -> list[Path]:
    """Where real source files live on this machine (read-only; nothing is downloaded)."""
    roots: list[Path] = [Path(sysconfig.get_paths()["stdlib"])]
    purelib = Path(sysconfig.get_paths()["purelib"])
    roots += sorted(purelib.glob("tree_sitter_*"))
    home = Path.home()
    roots += [home / ".cache" / "spark-ls-e2e", Path("/usr/share/doc"), Path("/usr/lib/go"), Path("/usr/local/go/src")]
    roots += sorted((home / ".rustup" / "toolchains").glob("*/share/doc")) if (home / ".rustup").exists() else []
    roots += sorted((home / ".pyenv" / "versions").glob("*/lib/python3*/test")) if (home / ".pyenv").exists() else []
    return [root for root in roots if root.exists()]


_SKIP_DIRS = {"__pycache__", ".git", "dist", "min", "esm-min", "bundle"}
_SKIP_NAME = re.compile(r"(bad|badsyntax|_fail|invalid|\.min\.|\.d\.ts$|test_grammar|tokenize_tests)", re.IGNORECASE)


def discover(per_language: int) -> dict[str, list[Path]]:
    """Up to ``per_language`` real files per language, in a stable order."""
    found: dict[str, list[Path]] = {}
    seen: set[Path] = set()
    for root in _roots():
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            if all(len(found.get(name, [])) >= per_language for name in LANGUAGES):
                return found
            for name in sorted(files):
                path = Path(directory) / name
                if _SKIP_NAME.search(name):
                    continue
                language = language_for(path=str(path))
                if language is None or language.name not in LANGUAGES:
                    continue
                bucket = found.setdefault(language.name, [])
                if len(bucket) >= per_language:
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                real = path.resolve()
                if not 800 <= size <= 120_000 or real in seen:
                    continue
                seen.add(real)
                bucket.append(path)
    return found


@dataclass(frozen=True)
class Target:
    path: str
    language: Any
    text: str
    lines: list[str]
    name: str
    region: tuple[int, int]  # inclusive: the function's true lines
    header: int  # the line holding the name
    siblings: list[Any]  # scopes at the same level, in order (the target included)


@dataclass(frozen=True)
class Case:
    kind: str
    hostile: bool
    target: Target
    old: str  # the text the reply is applied to
    reply: str
    mode: str
    allowed: tuple[tuple[int, int], ...]
    scope: tuple[int, int]
    true_region: tuple[int, int]
    expected: str | None = None  # well-formed: the exact intended result


def _contains(outer: Any, inner: Any) -> bool:
    return outer is not inner and outer.start_line <= inner.start_line and inner.end_line <= outer.end_line and (
        outer.start_line, outer.end_line) != (inner.start_line, inner.end_line)


def targets_in(path: Path, limit: int, rng: random.Random) -> list[Target]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if "\r" in text or "\t" in text[:2000] and path.suffix == ".py":
        return []
    return targets_in_text(text, str(path), limit, rng)


def targets_in_text(text: str, path: str, limit: int, rng: random.Random) -> list[Target]:
    """Up to ``limit`` functions, methods or classes of a file that parses cleanly."""
    language = language_for(path=path)
    if language is None:
        return []
    snapshot = snapshot_of(text, language)
    if snapshot.tree is None or snapshot.tree.root_node.has_error:
        return []
    scopes = [s for s in all_scopes(snapshot) if s.kind in ("function", "method", "class")]
    lines = _lines(text)
    found: list[Target] = []
    for scope in scopes:
        if not 2 <= scope.end_line - scope.start_line <= 120 or not scope.name:
            continue
        parent = [s for s in scopes if _contains(s, scope)]
        level = [s for s in scopes if [p for p in scopes if _contains(p, s)] == parent]
        header = next((i for i in range(scope.start_line, scope.end_line + 1)
                       if re.search(rf"\b{re.escape(scope.name)}\b", lines[i])), None)
        if header is None or header > scope.start_line + 3:
            continue
        if any(s is not scope and s.start_line <= scope.end_line and scope.start_line <= s.end_line and s in level
               for s in level):
            continue
        if lines[scope.start_line][: len(lines[scope.start_line]) - len(lines[scope.start_line].lstrip())] != \
                lines[header][: len(lines[header]) - len(lines[header].lstrip())]:
            continue
        found.append(Target(path, language, text, lines, scope.name, (scope.start_line, scope.end_line),
                            header, level))
    rng.shuffle(found)
    return found[:limit]


def _comment(language: str) -> str:
    return "#" if language == "python" else "//"


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _body_indent(target: Target) -> str:
    last = target.region[1]
    head = _indent(target.lines[target.header])
    for line in target.lines[target.header + 1 : last + 1]:
        if line.strip() and len(_indent(line)) > len(head):
            return _indent(line)
    return head + "    "


def _replace(lines: list[str], first: int, last: int, new: list[str]) -> str:
    return "".join(lines[:first] + new + lines[last + 1 :])


def _fenced(code: str, language: str) -> str:
    return f"Here is the rewritten code:\n```{_FENCE.get(language, '')}\n{code}{'' if code.endswith(chr(10)) else chr(10)}```\n"


def _well_formed_new(target: Target, rng: random.Random) -> list[tuple[str, list[str]]]:
    """(label, new target lines) for correct edits of the target."""
    first, last = target.region
    lines = target.lines[first : last + 1]
    lang = target.language.name
    header = target.header - first
    out: list[tuple[str, list[str]]] = []
    note = f"{_body_indent(target)}{_comment(lang)} checked by the bench\n"
    # a comment line right after the header line (Go/JS/...: the header ends with "{"; Python: ":")
    if lines[header].rstrip().endswith(("{", ":")) and header + 1 < len(lines):
        out.append(("comment", lines[: header + 1] + [note] + lines[header + 1 :]))
    # a trailing comment on a body line (not a continuation, not inside a string we can see)
    body = [i for i in range(header + 1, len(lines) - (0 if lang == "python" else 1))
            if lines[i].strip() and not lines[i].rstrip().endswith(("\\", ",", "(", "[", "{"))
            and '"""' not in lines[i] and "'''" not in lines[i] and "`" not in lines[i]
            and "/*" not in lines[i] and "*/" not in lines[i] and not lines[i].lstrip().startswith(("*", "#", "//"))
            and len(_indent(lines[i])) > len(_indent(lines[header]))]
    if body:
        index = rng.choice(body)
        changed = list(lines)
        changed[index] = changed[index].rstrip("\n") + f"  {_comment(lang)} note\n"
        if lang == "python" or "//" not in lines[index]:
            out.append(("trailing comment", changed))
    return out


def cases_for(target: Target, rng: random.Random, *, broken: bool = True) -> Iterator[Case]:
    old, lines, path = target.text, target.lines, target.path
    lang = target.language.name
    first, last = target.region
    region = target.region
    level = target.siblings
    position = next(i for i, s in enumerate(level) if (s.start_line, s.end_line) == region)
    after = level[position + 1] if position + 1 < len(level) else None
    before = level[position - 1] if position > 0 else None

    def fence(code: str) -> str:
        return _fenced(code, lang)

    target_text = "".join(lines[first : last + 1])

    # ---------------------------------------------------------------- well-formed
    for label, new_lines in _well_formed_new(target, rng):
        new = _replace(lines, first, last, new_lines)
        diff = unified_diff(old, new, path)
        yield Case(f"well-formed diff ({label})", False, target, old, diff, "diff", (region,), region, region, new)
        yield Case(f"well-formed scope ({label})", False, target, old, fence("".join(new_lines)), "scope", (region,),
                   region, region, new)
        yield Case(f"well-formed fenced diff ({label})", False, target, old,
                   f"Sure.\n```diff\n{diff}```\n", "diff", (region,), region, region, new)

    edits = _well_formed_new(target, rng)
    fixed_lines = edits[0][1] if edits else lines[first : last + 1]
    fixed = "".join(fixed_lines)

    def both(kind: str, new_text: str, *, allowed: tuple[tuple[int, int], ...] = (region,),
             scope: tuple[int, int] = region, code: str | None = None) -> Iterator[Case]:
        if new_text != old:
            yield Case(f"{kind} (diff)", True, target, old, unified_diff(old, new_text, path), "diff", allowed, scope, region)
        yield Case(f"{kind} (scope)", True, target, old, fence(code if code is not None else new_text), "scope",
                   allowed, scope, region)

    # ---------------------------------------------------------------- neighbours
    if after is not None:
        a0, a1 = after.start_line, after.end_line
        neighbour = "".join(lines[a0 : a1 + 1])
        gap = "".join(lines[last + 1 : a0])
        swallowed = (first, a1)  # as tree-sitter's error recovery makes a broken function's region
        dropped = _replace(lines, first, a1, fixed_lines)
        yield from both("drop the next definition", dropped, code=fixed)
        yield from both("drop the next definition, region swallowed it", dropped, allowed=(swallowed,),
                        scope=swallowed, code=fixed)
        duplicated = _replace(lines, first, last, fixed_lines + ["\n"] + lines[a0 : a1 + 1])
        yield from both("duplicate the next definition", duplicated, code=fixed + "\n" + neighbour)
        reordered = _replace(lines, first, a1, lines[a0 : a1 + 1] + _lines(gap) + fixed_lines)
        yield from both("reorder with the next definition", reordered, allowed=(swallowed,), scope=swallowed,
                        code=neighbour + gap + fixed)
        renamed_neighbour = neighbour.replace(after.name, after.name + "_v2", 1) if after.name else neighbour + "\n"
        renamed = old.replace(neighbour, renamed_neighbour, 1)
        yield from both("rename the next definition", renamed, allowed=(swallowed,), scope=swallowed,
                        code=fixed + gap + renamed_neighbour)
        changed_neighbour = _replace(lines, a0, a1, [lines[a0]] + [f"{_body_indent(target)}{_comment(lang)} x\n"]
                                     + lines[a0 + 1 : a1 + 1])
        yield from both("rewrite the next definition, region swallowed it", changed_neighbour, allowed=(swallowed,),
                        scope=swallowed, code=fixed + gap + "".join(_lines(changed_neighbour)[a0 : a1 + 2]))
        yield Case("reply for the wrong function (scope)", True, target, old, fence(neighbour), "scope", (region,),
                   region, region)
        wrong = _replace(lines, a0, a1, [lines[a0]] + [f"{_body_indent(target)}{_comment(lang)} y\n"] + lines[a0 + 1 : a1 + 1])
        yield Case("reply for the wrong function (diff)", True, target, old, unified_diff(old, wrong, path), "diff",
                   (region,), region, region)
    if before is not None and before.name and before.name != target.name:
        b0, b1 = before.start_line, before.end_line
        shadow_code = "".join(lines[b0 : b1 + 1]).replace(before.name, before.name, 1)
        shadow_lines = _lines(shadow_code)
        shadow_lines.insert(min(len(shadow_lines) - 1, (target.header - first) + 1),
                            f"{_body_indent(target)}{_comment(lang)} shadowing copy\n")
        shadow = "".join(shadow_lines)
        shadowed = _replace(lines, first, last, fixed_lines + ["\n"] + _lines(shadow))
        yield from both("shadow an existing definition after the target", shadowed, code=fixed + "\n" + shadow)
        shadowed_before = _replace(lines, first, last, _lines(shadow) + ["\n"] + fixed_lines)
        yield from both("shadow an existing definition before the target", shadowed_before, code=shadow + "\n" + fixed)
    # ---------------------------------------------------------------- truncated, whole file, context
    half = max(1, (last - first + 1) // 2)
    truncated = "".join(fixed_lines[:half])
    yield Case("truncated scope (scope)", True, target, old, fence(truncated), "scope", (region,), region, region)
    yield Case("truncated scope, no fence (scope)", True, target, old, truncated, "scope", (region,), region, region)
    whole = _replace(lines, first, last, fixed_lines)
    if after is not None:
        a0 = after.start_line
        whole = whole.replace(lines[a0], lines[a0].rstrip("\n") + f" {_comment(lang)} z\n" if lang == "python"
                              else lines[a0], 1)
    yield Case("whole-file reply (scope)", True, target, old, fence(whole), "scope", (region,), region, region)
    everything = old.replace(target_text, fixed, 1) + f"{_comment(lang)} appended\n"
    yield Case("whole-file diff touching the end (diff)", True, target, old, unified_diff(old, everything, path), "diff",
               (region,), region, region)
    diff = unified_diff(old, _replace(lines, first, last, fixed_lines), path)
    context_lines = [i for i, line in enumerate(diff.splitlines(keepends=True)) if line.startswith(" ") and line.strip()]
    if context_lines:
        damaged = diff.splitlines(keepends=True)
        pick = rng.choice(context_lines)
        damaged[pick] = damaged[pick].rstrip("\n") + " wrong_context\n"
        yield Case("hunk with wrong context (diff)", True, target, old, "".join(damaged), "diff", (region,), region, region)
        shifted = re.sub(r"^@@ -(\d+)", lambda m: f"@@ -{max(1, int(m.group(1)) + rng.choice([-40, 40]))}", diff,
                         flags=re.MULTILINE)
        yield Case("hunk with wrong line numbers (diff)", True, target, old, shifted, "diff", (region,), region, region)
    # ---------------------------------------------------------------- extra top-level code
    call = "print(" + target.name + "())\n" if lang == "python" else f"{target.name}();\n"
    for gap in ("", "\n", "\n\n"):
        yield from both(f"extra top-level code after the target (gap {len(gap)})",
                        _replace(lines, first, last, fixed_lines + _lines(gap) + [call]), code=fixed + gap + call)
    if lang == "python":
        yield from both("module-level return", _replace(lines, first, last, fixed_lines + ["return None\n"]),
                        code=fixed + "return None\n")
    header_line = fixed_lines[target.header - first]
    renamed_header = re.sub(rf"\b{re.escape(target.name)}\b", target.name + "_renamed", header_line, count=1)
    if renamed_header != header_line:
        renamed_target = "".join(fixed_lines[: target.header - first] + [renamed_header]
                                 + fixed_lines[target.header - first + 1 :])
        yield from both("rename the target", _replace(lines, first, last, _lines(renamed_target)), code=renamed_target)
    # ---------------------------------------------------------------- a syntax error near the target
    if broken:
        yield from _broken_cases(target, fixed_lines, rng)


_BREAKERS = ("(", ")", "{", "}", "[", "]", ":", '"')


def _broken_cases(target: Target, fixed_lines: list[str], rng: random.Random) -> Iterator[Case]:
    """The target with a character deleted near its start (a typo mid-edit); the region is what
    the context picker computes in the broken file (possibly swallowing neighbours); replies:
    the repaired target, the repaired target without its neighbour, a whole-file echo."""
    first, last = target.region
    lines = target.lines
    lang = target.language.name
    for index in range(target.header, min(last, target.header + 3) + 1):
        line = lines[index]
        spots = [i for i, char in enumerate(line) if char in _BREAKERS]
        if not spots:
            continue
        spot = rng.choice(spots)
        broken_line = line[:spot] + line[spot + 1 :]
        broken = "".join(lines[:index] + [broken_line] + lines[index + 1 :])
        snapshot = snapshot_of(broken, target.language)
        context = pick_context(snapshot, target.header, target.header, path=target.path)
        region = context.region
        repaired = "".join(lines[first : last + 1])  # the original target: the fix
        fence = _fenced(repaired, lang)
        yield Case("syntax error near the target: repaired target (scope)", True, target, broken, fence, "scope",
                   (region,), region, (first, last))
        yield Case("syntax error near the target: repaired target (diff)", True, target, broken,
                   unified_diff(broken, target.text, target.path), "diff", (region,), region, (first, last))
        if region[1] > last:  # the picker's region reaches past the target: the fix alone drops the rest
            dropped = "".join(lines[:first] + lines[first : last + 1] + lines[region[1] + 1 :])
            yield Case("syntax error near the target: region swallowed a neighbour (diff)", True, target, broken,
                       unified_diff(broken, dropped, target.path), "diff", (region,), region, (first, last))
        return


# ------------------------------------------------------------------ the property


def _definitions_outside(text: str, language: Any, span: tuple[int, int]) -> tuple[list[tuple[str, str]], int]:
    """(kind, name) of the scopes outside ``span``, and how many outermost scopes lie in it."""
    snapshot = snapshot_of(text, language)
    scopes = [s for s in all_scopes(snapshot) if s.kind in ("function", "method", "class")]
    inside = [s for s in scopes if span[0] <= s.start_line and s.end_line <= span[1]]
    outermost = [s for s in inside if not any(_contains(o, s) for o in inside)]
    outside = [(s.kind, s.name) for s in scopes if s not in inside]
    return outside, len(outermost)


def judge(case: Case, result: str) -> str | None:
    """Why ``result`` is a wrong edit for ``case`` (None: it is not)."""
    if result == case.old:
        return None
    lines = _lines(case.old)
    a, b = case.true_region
    prefix, suffix = "".join(lines[:a]), "".join(lines[b + 1 :])
    if len(result) < len(prefix) + len(suffix) or not result.startswith(prefix) or not result.endswith(suffix):
        return "changed code outside the target"
    middle = result[len(prefix) : len(result) - len(suffix)]
    span = (a, a + len(_lines(middle)) - 1)
    snapshot = snapshot_of(result, case.target.language)
    if snapshot.tree is not None and snapshot.tree.root_node.has_error and not (
        snapshot_of(case.old, case.target.language).tree.root_node.has_error
    ):
        return "broke the syntax"
    _, outermost = _definitions_outside(result, case.target.language, span)
    if outermost > 1:
        return "added a definition next to the target"
    return None


def _blank(text: str) -> str:
    """Scope mode writes the rewritten lines without trailing whitespace."""
    out = []
    for line in _lines(text):
        body = line.rstrip("\r\n")
        out.append(body.rstrip(" \t") + line[len(body):])
    return "".join(out)


def run_case(case: Case) -> tuple[str, str | None]:
    """("applied" | "refused" | "wrong" | "mangled", detail)."""
    try:
        result = apply_reply(case.old, case.reply, path=case.target.path, mode=case.mode,  # type: ignore[arg-type]
                             allowed=list(case.allowed), scope=case.scope, language=case.target.language)
    except PatchRefused as refusal:
        return "refused", refusal.reason
    if not case.hostile:
        if result == case.expected or (case.mode == "scope" and _blank(result) == _blank(case.expected or "")):
            return "applied", None  # scope mode drops trailing whitespace of the lines it rewrites
        why = judge(case, result)
        return ("wrong", why) if why else ("mangled", "applied, but not the intended text")
    why = judge(case, result)
    if why:
        return "wrong", why
    return ("refused" if result == case.old else "applied"), None


def corpus(*, files_per_language: int, targets_per_file: int, seed: int = 11) -> Iterator[Case]:
    rng = random.Random(seed)
    for language, paths in sorted(discover(files_per_language).items()):
        for path in paths:
            for target in targets_in(path, targets_per_file, rng):
                yield from cases_for(target, rng)


def evaluate(cases: Iterator[Case]) -> dict[str, Any]:
    counts: dict[tuple[bool, str], int] = {}
    by_language: dict[str, dict[str, int]] = {}
    by_kind: dict[str, dict[str, int]] = {}
    examples: list[str] = []
    seconds = 0.0
    total = 0
    for case in cases:
        started = time.perf_counter()
        outcome, detail = run_case(case)
        seconds += time.perf_counter() - started
        total += 1
        counts[(case.hostile, outcome)] = counts.get((case.hostile, outcome), 0) + 1
        language = by_language.setdefault(case.target.language.name, {})
        key = ("hostile " if case.hostile else "well-formed ") + outcome
        language[key] = language.get(key, 0) + 1
        kind = by_kind.setdefault(re.sub(r" \(.*", "", case.kind) if case.hostile else "well-formed", {})
        kind[outcome] = kind.get(outcome, 0) + 1
        if outcome in ("wrong", "mangled") and len(examples) < 10:
            examples.append(f"{case.target.path}:{case.target.region[0] + 1} {case.target.name}: {case.kind}: {detail}")
    return {"counts": counts, "by_language": by_language, "by_kind": by_kind, "examples": examples,
            "apply_seconds": seconds, "total": total}


def overhead(quick: bool, tiny: bool = False) -> list[dict[str, Any]]:
    """What the structural checks cost per resolve: ``apply_reply`` on bench_engine's generated
    Python with and without a ``scope`` (no scope: confinement and syntax only), interleaved so
    machine load hits both alike."""
    import statistics

    from bench.bench_engine import PATH, _reply_for, generate_python
    from spark_ls.context.document import SourceDocument

    language = language_for(path=PATH)
    rows = []
    for size in (2_000,) if tiny else (2_000, 10_000):
        text = generate_python(size, seed=size)
        document = SourceDocument(text, language)
        rng = random.Random(size)
        spots = [i for i, row in enumerate(text.split("\n")) if row.strip().startswith(("result = []", "total = value"))]
        timings: dict[bool, list[float]] = {True: [], False: []}
        for iteration in range(6 if tiny else 40 if quick else 300):
            line = rng.choice(spots)
            reply = _reply_for(text, line, rng, iteration % 3)
            snapshot = document.snapshot()
            context = pick_context(snapshot, line, line, path=PATH)
            order = (True, False) if iteration % 2 else (False, True)
            for scoped in order:
                started = time.perf_counter()
                apply_reply(snapshot.text, reply, path=PATH, mode="diff", allowed=[context.region],
                            scope=context.region if scoped else None, language=language, old_tree=snapshot.tree)
                timings[scoped].append((time.perf_counter() - started) * 1e3)
        without, with_checks = statistics.median(timings[False]), statistics.median(timings[True])
        rows.append({"language": f"(engine cost, {size:,} lines)", "apply p50 ms, no structural checks": round(without, 3),
                     "apply p50 ms, with them": round(with_checks, 3)})
    return rows


def run(quick: bool, tiny: bool = False) -> dict[str, Any]:
    """``tiny`` (the smoke test): one file per language, one target each; the engine cost on 2,000 lines."""
    diffs_log = logging.getLogger("spark_ls.diffs")
    level = diffs_log.level
    diffs_log.setLevel(logging.ERROR)  # dropped extras are logged per reply
    try:
        return _run(quick, tiny)
    finally:
        diffs_log.setLevel(level)  # in-process callers (the smoke test) keep their logging


def _run(quick: bool, tiny: bool) -> dict[str, Any]:
    started = time.perf_counter()
    files, per_file = (1, 1) if tiny else (6, 2) if quick else (40, 3)
    result = evaluate(corpus(files_per_language=files, targets_per_file=per_file))
    counts = result["counts"]
    hostile = sum(v for (h, _), v in counts.items() if h)
    wrong = counts.get((True, "wrong"), 0)
    refused = counts.get((True, "refused"), 0)
    applied = counts.get((True, "applied"), 0)
    good_total = sum(v for (h, _), v in counts.items() if not h)
    good_applied = counts.get((False, "applied"), 0)
    rate = good_applied / good_total if good_total else 0.0
    rows: list[dict[str, Any]] = []
    for language, tally in sorted(result["by_language"].items()):
        rows.append({"language": language, **{k: tally.get(k, 0) for k in (
            "hostile wrong", "hostile refused", "hostile applied", "well-formed applied", "well-formed refused",
            "well-formed mangled", "well-formed wrong")}})
    rows.append({"language": "all", "hostile wrong": wrong, "hostile refused": refused, "hostile applied": applied,
                 "well-formed applied": good_applied, "well-formed refused": counts.get((False, "refused"), 0),
                 "well-formed mangled": counts.get((False, "mangled"), 0),
                 "well-formed wrong": counts.get((False, "wrong"), 0)})
    rows += overhead(quick, tiny)
    kinds = "; ".join(
        f"{kind}: {', '.join(f'{k} {v}' for k, v in sorted(t.items()))}" for kind, t in sorted(result["by_kind"].items())
    )
    notes = [
        (f"{hostile} hostile replies: {wrong} wrong, {refused} refused, {applied} applied (within the target); "
         f"{good_total} well-formed replies: {good_applied} applied exactly ({rate:.1%})"),
        ("wrong = the result changed code outside the target's true lines, added a definition next to it, or broke "
         "the syntax of a file that parsed; 'applied' hostile replies are those the engine could honour inside the "
         "target (e.g. an echoed neighbour dropped, a shifted hunk placed by its context)"),
        (f"languages: {', '.join(sorted(result['by_language']))}; sources: Python stdlib and files shipped on this "
         "machine (tree-sitter wheels, editor test dependencies, toolchain docs); nothing downloaded"),
        f"engine time: {1000 * result['apply_seconds'] / max(1, result['total']):.2f} ms per reply on average",
        f"by kind: {kinds}",
    ]
    notes += [f"example: {example}" for example in result["examples"]]
    notes.append(f"corpus built and judged in {time.perf_counter() - started:.0f} s")
    return {
        "rows": rows,
        "targets": [
            (f"0 wrong edits in >= 10,000 hostile replies ({wrong} in {hostile})", wrong == 0 and hostile >= 10_000),
            (f"well-formed replies apply >= 99% ({rate:.1%} of {good_total})", rate >= 0.99),
        ],
        "notes": notes,
    }
