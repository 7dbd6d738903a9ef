"""Run the planned work concurrently and combine the results per file.

Combining several actions on one file: every target runs against the *original* text, so each
proposal is a self-contained change (a valid SARIF fix on its own) and scopes run in parallel.
At most one proposal per scope (function, method, class or module-level lines) per run: when
several actions propose a change to one function, the one with the highest priority is kept
(a syntax-error fix, then a fix for an imported finding, then the scope actions in --action
order) and the others are reported as conflicts naming it ("run again after applying").
The file's combined result applies the proposals' edits in plan order (document position, then
the order of --action); a proposal whose edits overlap an already accepted one is withdrawn and
reported as a conflict; two different changes to the same line count as overlapping. Identical
edits (two actions adding the same import) are applied once. The combined text is re-verified
after each proposal is added (``diffs.check_combined``: it still parses, compiles for Python,
and defines no name twice); a proposal that breaks it is withdrawn too. Output order never depends on completion order, so --jobs does not
change the output.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from spark_ls.check.files import DecodedText, SourceFile, match_line_endings
from spark_ls.check.report import (
    CheckReport,
    FileResult,
    Proposal,
    Refusal,
    Target,
    TextEdit,
)
from spark_ls.diffs import PatchRefused
from spark_ls.model.types import ModelError


@dataclass
class PreparedFile:
    source: SourceFile
    original: DecodedText
    snapshot: Any  # spark_ls.context.Snapshot of the original text
    targets: list[Target] = field(default_factory=list)
    language: str | None = None


# The unit of work: (file, target) -> the whole new text of the file (== original: no change).
# Raises diffs.PatchRefused (reply not applied) or ModelError.
Work = Callable[[PreparedFile, Target], Awaitable[str]]


class ProgressSink(Protocol):
    def begin(self, files: int, actions: int) -> None: ...
    def action_done(self, target: Target, outcome: str) -> None: ...
    def file_done(self, rel_path: str) -> None: ...
    def tokens(self, count: int) -> None: ...
    def log(self, message: str) -> None: ...
    def end(self) -> None: ...


class SilentProgress:
    def begin(self, files: int, actions: int) -> None: ...
    def action_done(self, target: Target, outcome: str) -> None: ...
    def file_done(self, rel_path: str) -> None: ...
    def tokens(self, count: int) -> None: ...
    def log(self, message: str) -> None: ...
    def end(self) -> None: ...


async def execute(
    prepared: Sequence[PreparedFile],
    work: Work,
    *,
    jobs: int,
    report: CheckReport,
    progress: ProgressSink | None = None,
) -> None:
    """Run every target of every file with at most ``jobs`` in flight; fill ``report.files``."""
    progress = progress or SilentProgress()
    limit = asyncio.Semaphore(max(1, jobs))
    stop = asyncio.Event()
    outcomes: dict[tuple[str, int], Proposal | Refusal | None] = {}
    remaining = {pf.source.rel_path: len(pf.targets) for pf in prepared}
    progress.begin(len(prepared), sum(remaining.values()))
    for pf in prepared:
        if not pf.targets:
            progress.file_done(pf.source.rel_path)

    async def one(pf: PreparedFile, target: Target) -> None:
        key = (pf.source.rel_path, target.order)
        outcome = "skipped"
        try:
            async with limit:
                if stop.is_set():
                    outcomes[key] = Refusal(target, "model-error", "not run: an earlier model error stopped the check")
                    return
                report.requests += 1
                try:
                    new_text = await work(pf, target)
                except PatchRefused as exc:
                    reason = getattr(exc, "reason", None) or str(exc)
                    outcomes[key] = Refusal(target, "refused", reason)
                    outcome = "refused"
                    progress.log(f"refused {target.label}: {reason}")
                    return
                except ModelError as exc:
                    outcomes[key] = Refusal(target, "model-error", exc.message)
                    report.errors.append(f"{target.label}: model error ({exc.kind}): {exc.message}")
                    outcome = "error"
                    progress.log(f"model error {target.label}: {exc.message}")
                    if exc.kind.lasting:  # every other request would fail the same way: stop early
                        stop.set()
                    return
            proposal = make_proposal(pf, target, new_text)
            outcomes[key] = proposal
            outcome = "proposal" if proposal else "no change"
        finally:
            progress.action_done(target, outcome)
            remaining[pf.source.rel_path] -= 1
            if remaining[pf.source.rel_path] == 0:
                progress.file_done(pf.source.rel_path)

    tasks = [asyncio.create_task(one(pf, t)) for pf in prepared for t in pf.targets]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    for pf in prepared:
        result = FileResult(source=pf.source, original=pf.original, language=pf.language)
        found = [outcomes.get((pf.source.rel_path, t.order)) for t in pf.targets]
        proposals = [o for o in found if isinstance(o, Proposal)]
        result.refusals = [o for o in found if isinstance(o, Refusal)]
        proposals, superseded = one_per_scope(proposals)
        for refusal in superseded:
            progress.log(f"{refusal.target.label}: {refusal.reason}")
        merged, accepted, conflicts = merge_proposals(pf.original.text, proposals, verify=_combined_check(pf))
        for refusal in conflicts:
            progress.log(f"{refusal.target.label}: {refusal.reason}")
        result.proposals = accepted
        result.refusals += superseded + conflicts
        result.refusals.sort(key=lambda r: r.target.order)
        result.new_text = merged if accepted else None
        report.files.append(result)
    report.files.sort(key=lambda f: f.source.rel_path)


def make_proposal(pf: PreparedFile, target: Target, new_text: str) -> Proposal | None:
    from spark_ls.diffs import minimal_edits

    original = pf.original.text
    new_text = match_line_endings(original, new_text)
    if new_text == original:
        return None
    edits = [_text_edit(pf.snapshot, e.start, e.end, e.new_text) for e in minimal_edits(original, new_text)]
    return Proposal(target=target, new_text=new_text, edits=edits, diff=file_diff(pf.original, new_text, target.rel_path))


def file_diff(original: DecodedText, new_text: str, rel_path: str) -> str:
    """A `git apply`-able diff of one file. A BOM is part of the first line on disk, so it is
    part of the diff's first line too, or the patch would not apply."""
    from spark_ls.diffs import unified_diff

    bom = "\ufeff" if original.has_bom else ""
    diff = unified_diff(bom + original.text, bom + new_text, rel_path)
    return diff if not diff or diff.endswith("\n") else diff + "\n"


def _text_edit(snapshot: Any, start: int, end: int, new_text: str) -> TextEdit:
    start_line, start_column = _position(snapshot, start)
    end_line, end_column = _position(snapshot, end)
    return TextEdit(start_line, start_column, end_line, end_column, new_text, start, end)


def _position(snapshot: Any, offset: int) -> tuple[int, int]:
    # At the very end of a text ending in a newline, "the line after the last one" is the
    # honest position; Snapshot.position_of clamps to the last line, which is also valid.
    return tuple(snapshot.position_of(offset))


def priority(target: Target) -> tuple[int, int]:
    """Which proposal wins a scope: a syntax-error fix, then a fix for an imported finding, then
    the scope and file actions (in --action order, which is plan order)."""
    if target.rule_id == "syntax-error":
        rank = 0
    elif target.message is not None:
        rank = 1
    else:
        rank = 2
    return rank, target.order


def one_per_scope(proposals: Sequence[Proposal]) -> tuple[list[Proposal], list[Refusal]]:
    """At most one proposal per scope (``Target.group``): the highest-priority one; the others
    become conflicts that say which action's proposal was kept."""
    best: dict[str, Proposal] = {}
    for proposal in proposals:
        current = best.get(proposal.target.group)
        if current is None or priority(proposal.target) < priority(current.target):
            best[proposal.target.group] = proposal
    kept = [p for p in proposals if best[p.target.group] is p]
    superseded = []
    for proposal in proposals:
        winner = best[proposal.target.group]
        if winner is proposal:
            continue
        target = winner.target
        where = f"{target.scope_kind} {target.scope_name}" if target.scope_name else f"line {target.start_line + 1}"
        superseded.append(Refusal(
            proposal.target, "conflict",
            f"one proposal per {where} per run: kept the {target.action_id} proposal ({target.title}); "
            "run again after applying it",
        ))
    return kept, superseded


def _combined_check(pf: PreparedFile) -> Callable[[str, str], None]:
    from spark_ls.diffs import check_combined

    snapshot = pf.snapshot
    language = getattr(snapshot, "language", None)
    tree = getattr(snapshot, "tree", None)

    def check(original: str, combined: str) -> None:
        check_combined(original, combined, path=pf.source.rel_path, language=language, old_tree=tree)

    return check


def _apply_kept(original: str, kept: Sequence[tuple[TextEdit, Proposal]]) -> str:
    text = original
    for edit, _ in sorted(kept, key=lambda item: (item[0].start, item[0].end), reverse=True):
        text = text[: edit.start] + edit.new_text + text[edit.end :]
    return text


def merge_proposals(
    original: str,
    proposals: Sequence[Proposal],
    *,
    verify: Callable[[str, str], None] | None = None,
) -> tuple[str, list[Proposal], list[Refusal]]:
    """Apply proposals (sorted by plan order) whose edits do not overlap earlier accepted ones.

    ``verify(original, combined)`` raises (diffs.PatchRefused) when a combination of proposals
    is not acceptable; it runs whenever a proposal joins earlier ones (each proposal alone was
    verified when it was made), and a proposal that fails it is withdrawn."""
    accepted: list[Proposal] = []
    conflicts: list[Refusal] = []
    kept: list[tuple[TextEdit, Proposal]] = []
    for proposal in sorted(proposals, key=lambda p: p.target.order):
        clash = _first_clash(proposal.edits, kept)
        if clash is not None:
            other = clash.target
            conflicts.append(Refusal(
                proposal.target, "conflict",
                f"overlaps the {other.action_id} proposal at line {other.start_line + 1}; run again after applying it",
            ))
            continue
        candidate = kept + [(edit, proposal) for edit in proposal.edits if not any(_same(edit, k) for k, _ in kept)]
        if verify is not None and accepted:
            try:
                verify(original, _apply_kept(original, candidate))
            except PatchRefused as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                conflicts.append(Refusal(
                    proposal.target, "conflict",
                    f"combined with the earlier proposals for this file: {reason}; run again after applying them",
                ))
                continue
        accepted.append(proposal)
        kept = candidate
    return _apply_kept(original, kept), accepted, conflicts


def _same(a: TextEdit, b: TextEdit) -> bool:
    return (a.start, a.end, a.new_text) == (b.start, b.end, b.new_text)


def _lines_touched(edit: TextEdit) -> range:
    """Original lines an edit changes; an insertion at the start of a line touches none."""
    if edit.start == edit.end and edit.start_column == 0:
        return range(0)
    last = edit.end_line - 1 if edit.end_column == 0 and edit.end_line > edit.start_line else edit.end_line
    return range(edit.start_line, last + 1)


def _first_clash(edits: Sequence[TextEdit], kept: Sequence[tuple[TextEdit, Proposal]]) -> Proposal | None:
    # Two different changes to one line conflict even when their characters do not overlap:
    # merging rewrites of the same line piecewise could produce code neither proposal meant.
    for edit in edits:
        lines = _lines_touched(edit)
        for other, owner in kept:
            if _same(edit, other):
                continue
            overlap = edit.start < other.end and other.start < edit.end
            both_insert_here = edit.start == edit.end == other.start == other.end
            other_lines = _lines_touched(other)
            same_line = bool(lines) and bool(other_lines) and lines.start < other_lines.stop and other_lines.start < lines.stop
            if overlap or both_insert_here or same_line:
                return owner
    return None


class CountingSession:
    """Wraps a ModelSession to count requests' tokens for the progress display and summary."""

    def __init__(self, inner: Any, report: CheckReport, progress: ProgressSink) -> None:
        self._inner = inner
        self._report = report
        self._progress = progress

    async def complete(self, request: Any, **kwargs: Any) -> Any:
        reply = await self._inner.complete(request, **kwargs)
        usage = getattr(reply, "usage", None) or {}
        used_in = int(usage.get("input_tokens") or usage.get("prompt_tokens") or 0)
        used_out = int(usage.get("output_tokens") or usage.get("completion_tokens") or 0)
        self._report.input_tokens += used_in
        self._report.output_tokens += used_out
        self._progress.tokens(used_in + used_out)
        return reply

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def monotonic() -> float:
    return time.perf_counter()
