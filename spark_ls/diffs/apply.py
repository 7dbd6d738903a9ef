"""``apply_reply``: a model's reply in, the verified new text out, or PatchRefused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from spark_ls.diffs.edits import changed_line_ranges, changed_span
from spark_ls.diffs.errors import PatchRefused
from spark_ls.diffs.parse import (
    DIFF_FENCE_INFO,
    fenced_blocks,
    has_diff,
    names_document,
    parse_diff,
    reply_lines,
)
from spark_ls.diffs.place import (
    apply_placements,
    describe_ranges,
    insertion_allowed,
    line_allowed,
    place_hunks,
)
from spark_ls.diffs.scope import rewrite_scope
from spark_ls.diffs.structure import check_no_new_duplicates, check_structure
from spark_ls.diffs.text import (
    LazyLines,
    count_lines,
    has_other_breaks,
    line_contents,
    split_lines,
)
from spark_ls.diffs.verify import (
    ParserSource,
    is_python,
    new_tree_source,
    old_tree_source,
    verify_syntax,
)

if TYPE_CHECKING:
    import tree_sitter

LineRange = tuple[int, int]
Change = tuple[int, int, int, int]


def apply_diff(
    old: str, reply: str, *, path: str, allowed: Sequence[LineRange] | None = None, old_lines: list[str] | None = None
) -> str:
    """Apply the unified diff in ``reply`` to ``old`` (all hunks or none). ``old_lines``:
    ``split_lines(old)`` if already at hand (a snapshot keeps its lines up to date per edit)."""
    files = parse_diff(reply)
    hunks = []
    for file_diff in files:
        for name in (file_diff.source, file_diff.target):
            if name is None or name == "":
                continue
            if name == "/dev/null":
                raise PatchRefused("the diff creates or deletes a file")
            if not names_document(name, path):
                raise PatchRefused(f"the diff edits {name!r}, not {path!r}")
        if file_diff.refusals:
            raise PatchRefused(f"the diff {file_diff.refusals[0]}")
        hunks.extend(file_diff.hunks)
    # The same hunk twice (a model repeating its answer) is one change, not an overlap.
    seen: set[tuple[object, ...]] = set()
    unique = []
    for hunk in hunks:
        key = (hunk.old_start, hunk.lines)
        if key not in seen:
            seen.add(key)
            unique.append(hunk)
    hunks = unique
    if not hunks:
        raise PatchRefused("the reply holds no diff hunks")
    lines = old_lines if old_lines is not None else split_lines(old)
    try:
        placements = place_hunks(lines, hunks, allowed=allowed)
    except PatchRefused as refusal:
        if allowed is None or "outside the lines" not in refusal.reason:
            raise
        # Equal lines make a diff ambiguous (which of two blank lines did it delete?): a hunk
        # that touches a copy just outside the region may give the very text of one that stays
        # inside. Judge the text it gives, by the confinement check, not the hunk's line numbers.
        # Only when every hunk sits exactly where its header says (nothing moved to another
        # copy of its context).
        try:
            placements = place_hunks(lines, hunks, allowed=None)
            moved = any(p.hunk.hint is None or p.start != p.hunk.hint for p in placements)
            new = old if moved else apply_placements(old, lines, placements)
            if not moved:
                check_confined(old, new, allowed)
        except PatchRefused:
            moved = True
        if moved:
            raise refusal from None
        return new
    return apply_placements(old, lines, placements)


def check_confined(
    old: str, new: str, allowed: Sequence[LineRange], *, changes: Sequence[Change] | None = None
) -> None:
    """Refuse if turning ``old`` into ``new`` changes an old line outside ``allowed`` or inserts
    lines that are not inside or directly next to an allowed range. ``changes``: the
    ``changed_line_ranges(old, new)``, if already computed."""
    for old_first, old_end, new_first, new_end in changed_line_ranges(old, new) if changes is None else changes:
        for line in range(old_first, old_end):
            if not line_allowed(line, allowed):
                raise PatchRefused(
                    f"the edit changes line {line + 1}, outside the lines this action may change "
                    f"({describe_ranges(allowed)})"
                )
        if old_first == old_end and new_end > new_first and not insertion_allowed(old_first, allowed):
            raise PatchRefused(
                f"the edit inserts lines before line {old_first + 1}, outside the lines this action may "
                f"change ({describe_ranges(allowed)})"
            )


def _has_code(reply: str) -> bool:
    return any(info not in DIFF_FENCE_INFO for info, _ in fenced_blocks(reply_lines(reply)))


def apply_reply(
    old: str,
    reply: str,
    *,
    path: str,
    mode: Literal["diff", "scope"],
    allowed: Sequence[LineRange],
    scope: LineRange | None = None,
    language: ParserSource | None = None,
    old_tree: tree_sitter.Tree | None = None,
    new_definitions: bool = False,
    scope_is_definition: bool = True,
    old_lines: list[str] | None = None,
) -> str:
    """The new text for a model's reply, placed, confined and verified; never a partial edit.

    ``mode="diff"``: the reply holds a unified diff (tolerantly read). ``mode="scope"``: the reply
    holds the rewritten ``scope`` (inclusive line range). Either way a reply in the other form is
    accepted too (a diff in scope mode; code in diff mode when ``scope`` is given). An empty
    reply means "no change". ``allowed``: inclusive old-line ranges the edit may change; an
    empty range ``(k, k - 1)`` only allows insertions before line ``k``. ``old_tree``: the
    document's tree for ``old``, if at hand, to avoid reparsing it; ``old_lines`` likewise its
    ``split_lines(old)`` (``Snapshot.lines``), to avoid splitting the whole text again.

    With a ``scope``, the structural invariants of :mod:`spark_ls.diffs.structure` hold too:
    code after the target's own end is untouched even if ``scope`` swallowed it, the target
    keeps its name, and no new definition appears next to it unless ``new_definitions`` (an
    action that may add one: extract function), never one shadowing a name bound there.
    ``scope_is_definition=False``: ``scope`` is a plain line window (a next-edit region), not one
    definition; then only the rule "no name defined twice at one level" applies inside it.
    """
    if not reply.strip():
        return old
    if mode not in ("diff", "scope"):
        raise ValueError(f"mode must be 'diff' or 'scope', not {mode!r}")
    if has_diff(reply):
        new = apply_diff(old, reply, path=path, allowed=allowed, old_lines=old_lines)
    elif mode == "scope" or (scope is not None and _has_code(reply)):
        if scope is None:
            raise PatchRefused("there is no scope to rewrite")
        new = rewrite_scope(old, reply, scope=scope, allowed=allowed, python=is_python(language, path),
                            definition=scope_is_definition)
    else:
        raise PatchRefused("the reply holds no diff")
    if new == old:
        return old
    changes = list(changed_line_ranges(old, new))
    check_confined(old, new, allowed, changes=changes)
    if scope is not None and not scope_is_definition:
        check_no_new_duplicates(line_contents(old), line_contents(new), python=is_python(language, path))
    elif scope is not None:
        start, _, new_end = changed_span(old, new)
        plain = "\r" not in old and not has_other_breaks(old)
        anchor = (old.count("\n", 0, start) if plain else count_lines(old[:start]), start)  # a line start both share
        check_structure(
            LazyLines(old, anchor, plain=plain),
            LazyLines(new, anchor, plain=plain and "\r" not in new[start:new_end]
                      and not has_other_breaks(new[start:new_end])),
            changes,
            scope=scope,
            python=is_python(language, path),
            new_definitions=new_definitions,
            old_tree=old_tree_source(language, old, old_tree),
            new_tree=new_tree_source(language, old, new, old_tree),
        )
    verify_syntax(old, new, language, old_tree=old_tree, path=path)
    return new


def check_combined(
    old: str,
    new: str,
    *,
    path: str,
    language: ParserSource | None = None,
    old_tree: tree_sitter.Tree | None = None,
) -> None:
    """Re-verify a combination of separately verified results (``spark-ls check`` merging the
    proposals for one file): it must still parse (and, for Python, compile) no worse than
    ``old``, and may not define a name twice at one level where ``old`` did not."""
    if old == new:
        return
    check_no_new_duplicates(line_contents(old), line_contents(new), python=is_python(language, path))
    verify_syntax(old, new, language, old_tree=old_tree, path=path)
