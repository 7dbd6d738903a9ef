"""Place hunks on a text, or refuse the whole diff.

Each hunk's old side (context + removed lines) is searched for in this order:

1. exactly at the line the header states;
2. exactly elsewhere: the occurrence nearest the stated line (without a stated line it must be
   the only one);
3. equal up to whitespace (trailing whitespace, or indentation that maps consistently onto the
   file's, e.g. 2 spaces or tabs for 4 spaces, or a dedented copy): at the stated line, else
   the nearest, else the only one. Lines the hunk adds are re-indented the same way; when the
   hunk's old side shows a single indentation level, only added lines at that level can be
   mapped with certainty, so other levels make it no match.

Two occurrences equally near, an occurrence that matches only up to whitespace at the stated
line while an exact one exists elsewhere, no occurrence at all, or hunks that overlap: the
whole diff is refused with a reason naming the hunk. Occurrences where the hunk would change
lines outside ``allowed`` are not candidates (see :func:`offending_line`), but a hunk whose
stated line fits and is outside ``allowed`` is refused rather than moved to another copy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

from spark_ls.diffs.errors import PatchRefused
from spark_ls.diffs.parse import Hunk
from spark_ls.diffs.text import (
    IndentMap,
    content,
    dominant_ending,
    fit_indent_map,
    indent_of,
    indent_width,
    line_ending,
    uses_tabs,
)

LineRange = tuple[int, int]


@dataclass(frozen=True)
class Placement:
    hunk: Hunk
    start: int  # 0-based line of the old text where the hunk's old side begins
    end: int  # exclusive
    added: tuple[str, ...] | None = None  # re-indented added lines; None: as the hunk has them


def describe_ranges(allowed: Sequence[LineRange]) -> str:
    parts = []
    for start, end in allowed:
        if end < start:
            parts.append(f"an insertion before line {start + 1}")
        elif start == end:
            parts.append(f"line {start + 1}")
        else:
            parts.append(f"lines {start + 1}-{end + 1}")
    return ", ".join(parts) if parts else "none"


def line_allowed(line: int, allowed: Sequence[LineRange]) -> bool:
    """May old line ``line`` be removed or changed?"""
    return any(start <= line <= end for start, end in allowed)


def insertion_allowed(point: int, allowed: Sequence[LineRange]) -> bool:
    """May lines be inserted before old line ``point``?

    Inside an allowed range or directly adjacent to it (just before its first line or just
    after its last); an empty range ``(k, k - 1)`` allows insertions before line ``k`` only.
    """
    return any(start <= point <= end + 1 for start, end in allowed)


def offending_line(hunk: Hunk, start: int, allowed: Sequence[LineRange] | None) -> int | None:
    """The first old line (0-based) the hunk placed at ``start`` may not touch, or None."""
    if allowed is None:
        return None
    line = start
    for hunk_line in hunk.lines:
        if hunk_line.kind == "+":
            if not insertion_allowed(line, allowed):
                return line
        elif hunk_line.kind == "-":
            if not line_allowed(line, allowed):
                return line
            line += 1
        else:
            line += 1
    return None


class _Text:
    """The old text's lines, with lookups built only when a hunk needs them."""

    def __init__(self, lines: list[str], contents: list[str] | None = None) -> None:
        self.lines = lines
        self._contents = contents
        self._exact: dict[str, list[int]] | None = None
        self._stripped: list[str] | None = None
        self._loose: dict[str, list[int]] | None = None
        self._tabs: bool | None = None

    @property
    def contents(self) -> list[str]:
        if self._contents is None:
            self._contents = [content(line) for line in self.lines]
        return self._contents

    def content_at(self, index: int) -> str:
        return self._contents[index] if self._contents is not None else content(self.lines[index])

    def exact_positions(self, first: str) -> list[int]:
        if self._exact is None:
            self._exact = {}
            for index, text in enumerate(self.contents):
                self._exact.setdefault(text, []).append(index)
        return self._exact.get(first, [])

    @property
    def stripped(self) -> list[str]:
        if self._stripped is None:
            self._stripped = [text.strip() for text in self.contents]
        return self._stripped

    def loose_positions(self, first: str) -> list[int]:
        if self._loose is None:
            self._loose = {}
            for index, text in enumerate(self.stripped):
                self._loose.setdefault(text, []).append(index)
        return self._loose.get(first.strip(), [])

    @property
    def tabs(self) -> bool:
        if self._tabs is None:
            self._tabs = uses_tabs(self.contents)
        return self._tabs


def _exact_at(text: _Text, old_side: list[str], start: int) -> bool:
    if start < 0 or start + len(old_side) > len(text.lines):
        return False
    return all(text.content_at(start + offset) == wanted for offset, wanted in enumerate(old_side))


class _NoMatch:
    """The hunk does not match here (distinct from None: "matches, added lines as written")."""


NO_MATCH = _NoMatch()


def _loose_at(text: _Text, hunk: Hunk, old_side: list[str], start: int) -> tuple[str, ...] | None | _NoMatch:
    """Match up to whitespace at ``start``: NO_MATCH, or the added lines re-indented for the
    file (None when they can stay as written)."""
    if start < 0 or start + len(old_side) > len(text.lines):
        return NO_MATCH
    stripped = text.stripped
    for offset, wanted in enumerate(old_side):
        if stripped[start + offset] != wanted.strip():
            return NO_MATCH
    pairs: list[tuple[int, int]] = []
    same_indent = True
    for offset, wanted in enumerate(old_side):
        if not wanted.strip():
            continue
        model_indent, file_indent = indent_of(wanted), indent_of(text.contents[start + offset])
        same_indent = same_indent and model_indent == file_indent
        pairs.append((indent_width(model_indent), indent_width(file_indent)))
    added = [line.text for line in hunk.lines if line.kind == "+"]
    if same_indent:
        return None
    if len(set(pairs)) == 1:
        # One indentation level to go by: whether the model's other levels are shifted or
        # scaled (2 spaces for 4?) cannot be told, so only added lines at that level are safe.
        model_width = pairs[0][0]
        if any(line.strip() and indent_width(indent_of(line)) != model_width for line in added):
            return NO_MATCH
    mapping = fit_indent_map(pairs, None, None, text.tabs)
    if mapping is None:
        return NO_MATCH
    return _reindent(added, mapping)


def _reindent(lines: list[str], mapping: IndentMap) -> tuple[str, ...] | _NoMatch:
    out = []
    for line in lines:
        mapped = mapping.apply(line)
        if mapped is None:
            return NO_MATCH
        out.append(mapped)
    return tuple(out)


def _nearest(hunk: Hunk, positions: list[int], hint: int) -> int:
    ordered = sorted(positions, key=lambda position: abs(position - hint))
    if len(ordered) > 1 and abs(ordered[0] - hint) == abs(ordered[1] - hint):
        first, second = sorted(ordered[:2])
        raise PatchRefused(
            f"hunk {hunk.number}: its context fits equally well at lines {first + 1} and {second + 1}",
            hunk=hunk.number,
        )
    return ordered[0]


def _only(hunk: Hunk, positions: list[int], how: str) -> int:
    if len(positions) == 1:
        return positions[0]
    shown = ", ".join(str(position + 1) for position in sorted(positions)[:5])
    raise PatchRefused(
        f"hunk {hunk.number}: its context occurs {how} at lines {shown} and the hunk states no line number",
        hunk=hunk.number,
    )


def _place_one(text: _Text, hunk: Hunk, allowed: Sequence[LineRange] | None) -> Placement:
    old_side = hunk.old_side
    hint = hunk.hint
    if not old_side:
        if hint is None:
            raise PatchRefused(
                f"hunk {hunk.number}: it adds lines without any context or line number to place them",
                hunk=hunk.number,
            )
        if hint > len(text.lines):
            raise PatchRefused(
                f"hunk {hunk.number}: line {hint} is past the end of the file ({len(text.lines)} lines)",
                hunk=hunk.number,
            )
        bad = offending_line(hunk, hint, allowed)
        if bad is not None:
            _refuse_outside(hunk, bad, allowed)
        return Placement(hunk, hint, hint)
    size = len(old_side)
    if hint is not None and _exact_at(text, old_side, hint) and offending_line(hunk, hint, allowed) is None:
        return Placement(hunk, hint, hint + size)

    outside: list[int] = []  # where the hunk fits but would change lines it may not

    def permitted(position: int) -> bool:
        bad = offending_line(hunk, position, allowed)
        if bad is not None:
            outside.append(bad)
        return bad is None

    exact_all = [p for p in text.exact_positions(old_side[0]) if _exact_at(text, old_side, p)]
    exact = [p for p in exact_all if permitted(p)]
    if hint is not None and hint in exact_all:
        # The stated line fits exactly but may not be changed: moving the hunk to another copy
        # of its context would be a guess about what the model meant.
        _refuse_outside(hunk, offending_line(hunk, hint, allowed) or 0, allowed)
    if exact:
        if hint is None:
            start = _only(hunk, exact, "exactly")
            return Placement(hunk, start, start + size)
        if hint not in exact_all and _loose_at(text, hunk, old_side, hint) is not NO_MATCH and permitted(hint):
            found = _nearest(hunk, exact, hint)
            raise PatchRefused(
                f"hunk {hunk.number}: its context matches line {hint + 1} up to whitespace and line "
                f"{found + 1} exactly; not guessing which is meant",
                hunk=hunk.number,
            )
        start = _nearest(hunk, exact, hint)
        return Placement(hunk, start, start + size)

    loose: dict[int, tuple[str, ...] | None] = {}
    for position in text.loose_positions(old_side[0]):
        added = _loose_at(text, hunk, old_side, position)
        if isinstance(added, _NoMatch):
            continue
        if permitted(position):
            loose[position] = added
        elif position == hint:
            _refuse_outside(hunk, offending_line(hunk, hint, allowed) or 0, allowed)  # as above
    if loose:
        if hint is not None and hint in loose:
            start = hint
        elif hint is not None:
            start = _nearest(hunk, list(loose), hint)
        else:
            start = _only(hunk, list(loose), "up to whitespace")
        return Placement(hunk, start, start + size, loose[start])
    if outside:
        _refuse_outside(hunk, min(outside), allowed)
    missing = [line for line in old_side if line.strip() and not text.loose_positions(line)]
    first = missing[0] if missing else next((line for line in old_side if line.strip()), old_side[0])
    raise PatchRefused(
        f"hunk {hunk.number}: its context was not found in the file (looking for {first.strip()[:80]!r})",
        hunk=hunk.number,
    )


def _refuse_outside(hunk: Hunk, line: int, allowed: Sequence[LineRange] | None) -> NoReturn:
    raise PatchRefused(
        f"hunk {hunk.number}: it changes line {line + 1}, outside the lines this action may change "
        f"({describe_ranges(allowed or [])})",
        hunk=hunk.number,
    )


def place_hunks(
    lines: list[str],
    hunks: Sequence[Hunk],
    *,
    allowed: Sequence[LineRange] | None = None,
    contents: list[str] | None = None,
) -> list[Placement]:
    """Placements for every hunk that changes something, in file order; refuses if any hunk
    cannot be placed with certainty or two hunks overlap. ``lines`` keep their endings;
    ``contents`` (the same lines without endings) may be passed if already at hand."""
    text = _Text(lines, contents)
    placements = sorted(
        (_place_one(text, hunk, allowed) for hunk in hunks if hunk.changes),
        key=lambda placement: (placement.start, placement.end),
    )
    for before, after in itertools.pairwise(placements):
        if after.start < before.end or (after.start == before.end and (before.start == before.end or after.start == after.end)):
            first, second = sorted((before.hunk.number, after.hunk.number))
            raise PatchRefused(f"hunks {first} and {second} overlap", hunk=second)
    return placements


def apply_placements(old: str, lines: list[str], placements: Sequence[Placement]) -> str:
    """The new text: each placed hunk's old side replaced by its new side."""
    ending = dominant_ending(old)
    pieces: list[str] = []  # unchanged runs (joined) and single hunk lines
    last_added_unmarked = False  # the final line came from a hunk without "\ No newline" markers
    cursor = 0
    for placement in placements:
        unchanged = "".join(lines[cursor : placement.start])
        if unchanged:
            pieces.append(unchanged)
            last_added_unmarked = False  # the text now ends with a line of the old file
        position = placement.start
        added = iter(placement.added) if placement.added is not None else None
        marked = any(line.no_newline for line in placement.hunk.lines)
        for hunk_line in placement.hunk.lines:
            if hunk_line.kind == " ":
                pieces.append(lines[position])
                position += 1
                last_added_unmarked = False
            elif hunk_line.kind == "-":
                position += 1
            else:
                text = next(added) if added is not None else hunk_line.text
                pieces.append(text + ("" if hunk_line.no_newline else (hunk_line.ending or ending)))
                last_added_unmarked = not marked
        cursor = position
    if cursor < len(lines):
        pieces.append("".join(lines[cursor:]))
        last_added_unmarked = False
    pieces = [piece for piece in pieces if piece]
    for index in range(len(pieces) - 1):
        if not line_ending(pieces[index]):
            pieces[index] += ending  # a line that was last (no newline) is followed by new lines now
    if pieces and last_added_unmarked and old and not line_ending(lines[-1]):
        pieces[-1] = content(pieces[-1])  # the model left out the markers; keep the file's own style
    return "".join(pieces)
