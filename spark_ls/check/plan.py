"""Turn files, actions and diagnostics into units of work (targets), and shard them.

A target's *group* is the scope it works on: the outermost function or method around it, else
the innermost class, else the exact lines (module-level code). Scope actions run once per
outermost function/method (a nested function is covered by its parent). Every target is run
against the original file; `runner` merges the results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spark_ls.actions.catalog import INSTRUCTION_ACTION_ID, ActionSpec
from spark_ls.check.findings import Finding
from spark_ls.check.report import Target

FUNCTION_KINDS = frozenset({"function", "method"})
SCOPE_KINDS = ("function", "method", "class")
FIX_DIAGNOSTIC = "fix-diagnostic"


def target_instruction(action: ActionSpec) -> str | None:
    """The free text a target carries: the --instruction action's text, else None (a catalog
    action's instruction is a template the prompt fills in)."""
    return action.instruction if action.id == INSTRUCTION_ACTION_ID else None


@dataclass(frozen=True)
class ScopeSpan:
    kind: str
    name: str
    start_line: int
    end_line: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}:{self.start_line + 1}"

    def contains(self, start_line: int, end_line: int) -> bool:
        return self.start_line <= start_line and end_line <= self.end_line

    def intersects(self, start_line: int, end_line: int) -> bool:
        return self.start_line <= end_line and start_line <= self.end_line


def scope_spans(scopes: Sequence[Any]) -> list[ScopeSpan]:
    """`picker.Scope` objects (anything with kind/name/start_line/end_line) as plain spans."""
    return [ScopeSpan(str(s.kind), str(s.name), int(s.start_line), int(s.end_line)) for s in scopes]


def outermost(spans: Sequence[ScopeSpan]) -> list[ScopeSpan]:
    """Spans not nested inside another span of the list, in document order."""
    ordered = sorted(spans, key=lambda s: (s.start_line, -s.end_line))
    kept: list[ScopeSpan] = []
    for span in ordered:
        if kept and kept[-1].contains(span.start_line, span.end_line):
            continue
        kept.append(span)
    return kept


def group_for(spans: Sequence[ScopeSpan], start_line: int, end_line: int) -> tuple[str, ScopeSpan | None]:
    functions = outermost([s for s in spans if s.kind in FUNCTION_KINDS])
    for function in functions:
        if function.contains(start_line, end_line):
            return function.key, function
    classes = [s for s in spans if s.kind == "class" and s.contains(start_line, end_line)]
    if classes:
        innermost = max(classes, key=lambda s: s.start_line)
        return innermost.key, innermost
    return f"lines:{start_line + 1}-{end_line + 1}", None


def candidate_scopes(spans: Sequence[ScopeSpan], kinds: Sequence[str]) -> list[ScopeSpan]:
    """Scopes an action runs on: outermost functions/methods (a nested function is covered by
    its parent's request) plus every class, when the action takes those kinds."""
    functions = outermost([s for s in spans if s.kind in FUNCTION_KINDS and s.kind in kinds])
    classes = [s for s in spans if s.kind == "class" and "class" in kinds]
    return sorted(functions + classes, key=lambda s: (s.start_line, -s.end_line))


def touched_scopes(
    spans: Sequence[ScopeSpan], changed: Sequence[tuple[int, int]], kinds: Sequence[str] = SCOPE_KINDS
) -> list[ScopeSpan]:
    """The candidate scopes a change touched: each function it intersects; for changed lines
    outside every function, the innermost class around them (when the action takes classes)."""
    candidates = candidate_scopes(spans, kinds)
    functions = [s for s in candidates if s.kind in FUNCTION_KINDS]
    classes = [s for s in candidates if s.kind == "class"]
    picked: set[ScopeSpan] = set()
    for start, end in changed:
        hit = [f for f in functions if f.intersects(start, end)]
        picked.update(hit)
        for line in _uncovered_lines(start, end, hit):
            around = [c for c in classes if c.contains(line, line)]
            if around:
                picked.add(max(around, key=lambda c: c.start_line))
    return sorted(picked, key=lambda s: (s.start_line, -s.end_line))


def _uncovered_lines(start: int, end: int, covers: Sequence[ScopeSpan]) -> list[int]:
    # Only the boundaries of uncovered runs matter for finding the class around them, and a
    # changed range can be huge (an untracked file), so walk the gaps instead of every line.
    lines: list[int] = []
    cursor = start
    for cover in sorted(covers, key=lambda c: c.start_line):
        if cover.start_line > cursor:
            lines += [cursor, min(cover.start_line - 1, end)]
        cursor = max(cursor, cover.end_line + 1)
    if cursor <= end:
        lines += [cursor, min(end, cursor + 10_000)]
    return lines


def _intersects_any(start: int, end: int, changed: Sequence[tuple[int, int]] | None) -> bool:
    return changed is None or any(s <= end and start <= e for s, e in changed)


@dataclass(frozen=True)
class SyntaxFinding:
    start_line: int
    end_line: int
    message: str


def plan_targets(
    rel_path: str,
    spans: Sequence[ScopeSpan],
    *,
    actions: Sequence[ActionSpec],
    diagnostic_action: ActionSpec | None = None,
    findings: Sequence[Finding] = (),
    syntax_problems: Sequence[SyntaxFinding] = (),
    changed: Sequence[tuple[int, int]] | None = None,
    lines: Sequence[str] = (),
) -> list[Target]:
    """All targets for one file, in a fixed order (by position, then the order of ``actions``).

    ``actions`` are scope or file actions; findings and syntax problems are fixed with
    ``diagnostic_action`` (none: they are ignored).
    """
    raw: list[tuple[tuple[int, int, int], Target]] = []
    line_count = len(lines)
    for index, action in enumerate(actions):
        if action.applies_to == "file":
            file_problems = tuple((p.start_line, p.message) for p in syntax_problems
                                  if _intersects_any(p.start_line, p.end_line, changed))
            if file_problems or target_instruction(action):
                raw.append(((0, 0, index), Target(
                    rel_path=rel_path, action_id=action.id, title=action.format_title(name=rel_path, kind="file"),
                    start_line=0, end_line=max(line_count - 1, 0), group="file",
                    instruction=target_instruction(action), problems=file_problems,
                )))
            continue
        scopes = (candidate_scopes(spans, action.scope_kinds) if changed is None
                  else touched_scopes(spans, changed, action.scope_kinds))
        for scope in scopes:
            if action.requires_re is not None and not action.matches_text(
                "".join(lines[scope.start_line : scope.end_line + 1])
            ):
                continue
            raw.append(((scope.start_line, 0, index), Target(
                rel_path=rel_path, action_id=action.id,
                title=action.format_title(name=scope.name, kind=scope.kind, line=scope.start_line + 1),
                start_line=scope.start_line, end_line=scope.end_line, group=scope.key,
                scope_kind=scope.kind, scope_name=scope.name, instruction=target_instruction(action),
            )))
    if diagnostic_action is None:
        return _ordered(raw)
    # Syntax errors in one scope are usually one mistake seen several times: one request each
    # group. A file action (fix-all) already takes every syntax error of the file.
    syntax_by_group: dict[str, list[SyntaxFinding]] = {}
    file_action_fixes_syntax = any(a.applies_to == "file" for a in actions)
    for problem in () if file_action_fixes_syntax else syntax_problems:
        if _intersects_any(problem.start_line, problem.end_line, changed):
            key, _ = group_for(spans, problem.start_line, problem.end_line)
            syntax_by_group.setdefault(key, []).append(problem)
    for key, problems in syntax_by_group.items():
        start = min(p.start_line for p in problems)
        end = max(p.end_line for p in problems)
        _, group_scope = group_for(spans, problems[0].start_line, problems[0].end_line)
        message = "; ".join(f"line {p.start_line + 1}: {p.message}" for p in problems)
        raw.append(((start, 1, 0), Target(
            rel_path=rel_path, action_id=diagnostic_action.id,
            title=diagnostic_action.format_title(message=problems[0].message, line=start + 1),
            start_line=start, end_line=end, group=key,
            scope_kind=group_scope.kind if group_scope else None,
            scope_name=group_scope.name if group_scope else None,
            message=message, rule_id="syntax-error", instruction=target_instruction(diagnostic_action),
        )))
    for index, finding in enumerate(findings):
        start, end = finding.start_line, finding.end_line
        if line_count:
            end = min(end, line_count - 1)
            start = min(start, end)
        if not _intersects_any(start, end, changed):
            continue
        key, finding_scope = group_for(spans, start, end)
        raw.append(((start, 2, index), Target(
            rel_path=rel_path, action_id=diagnostic_action.id,
            title=diagnostic_action.format_title(message=finding.message, line=start + 1),
            start_line=start, end_line=end, group=key,
            scope_kind=finding_scope.kind if finding_scope else None,
            scope_name=finding_scope.name if finding_scope else None,
            message=finding.message, rule_id=finding.rule_id, instruction=target_instruction(diagnostic_action),
        )))
    return _ordered(raw)


def _ordered(raw: list[tuple[tuple[int, int, int], Target]]) -> list[Target]:
    raw.sort(key=lambda item: item[0])
    return [_with_order(target, order) for order, (_, target) in enumerate(raw)]


def _with_order(target: Target, order: int) -> Target:
    from dataclasses import replace

    return replace(target, order=order)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` with 1 <= I <= N (1-based, as CI matrix indexes usually are)."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ValueError(f"--shard must look like I/N (e.g. 2/4), not {text!r}") from None
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"--shard {text}: need 1 <= I <= N")
    return index, count


def shard_of(rel_path: str, group: str, count: int) -> int:
    """1-based shard of a scope: a hash of its path and scope only, so it never depends on which
    other files were listed or in what order."""
    digest = hashlib.sha256(f"{rel_path}\0{group}".encode("utf-8", errors="surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
