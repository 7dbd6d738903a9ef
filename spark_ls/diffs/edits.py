"""Minimal edits between two texts, and ``git apply``-able unified diffs.

Offsets are Python ``str`` offsets (code points); the LSP layer converts them to UTF-16.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from spark_ls.diffs.text import count_lines, split_lines

# Above this many differing lines, difflib's junk heuristic keeps matching near-linear; the
# edits stay correct, merely less minimal.
_EXACT_MATCH_LIMIT = 2000


@dataclass(frozen=True)
class Edit:
    """Replace ``old[start:end]`` with ``new_text``."""

    start: int
    end: int
    new_text: str


def apply_edits(old: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (in any order) to ``old``."""
    result = old
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        result = result[: edit.start] + edit.new_text + result[edit.end :]
    return result


_BLOCK = 4096


def common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix: block-wise, then by binary search inside the first block
    that differs (C-speed slice comparisons, no long copies)."""
    limit = min(len(a), len(b))
    low = 0
    while low + _BLOCK <= limit and a[low : low + _BLOCK] == b[low : low + _BLOCK]:
        low += _BLOCK
    high = min(limit, low + _BLOCK)
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def common_suffix_length(a: str, b: str, limit: int) -> int:
    """Length of the common suffix, at most ``limit``."""
    limit = min(len(a), len(b), limit)
    size_a, size_b = len(a), len(b)
    low = 0
    while low + _BLOCK <= limit and a[size_a - low - _BLOCK : size_a - low] == b[size_b - low - _BLOCK : size_b - low]:
        low += _BLOCK
    high = min(limit, low + _BLOCK)
    while low < high:
        middle = (low + high + 1) // 2
        if a[size_a - middle : size_a - low] == b[size_b - middle : size_b - low]:
            low = middle
        else:
            high = middle - 1
    return low


def _is_line_start(text: str, offset: int) -> bool:
    if offset == 0 or offset >= len(text):
        return True
    before = text[offset - 1]
    return before == "\n" or (before == "\r" and text[offset] != "\n")


def changed_span(old: str, new: str) -> tuple[int, int, int]:
    """(start, old_end, new_end): the smallest whole-line window outside which both texts agree.

    ``old[start:old_end]`` became ``new[start:new_end]``; both ends fall on line starts.
    """
    prefix = common_prefix_length(old, new)
    while prefix > 0 and not (_is_line_start(old, prefix) and _is_line_start(new, prefix)):
        prefix -= 1
    suffix = common_suffix_length(old, new, min(len(old), len(new)) - prefix)
    while suffix > 0 and not (
        _is_line_start(old, len(old) - suffix) and _is_line_start(new, len(new) - suffix)
    ):
        suffix -= 1
    return prefix, len(old) - suffix, len(new) - suffix


def line_opcodes(old_lines: list[str], new_lines: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib opcodes (without "equal") between two line lists."""
    autojunk = max(len(old_lines), len(new_lines)) > _EXACT_MATCH_LIMIT
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=autojunk)
    return [op for op in matcher.get_opcodes() if op[0] != "equal"]


def changed_line_ranges(old: str, new: str) -> Iterator[tuple[int, int, int, int]]:
    """(old_first_line, old_end_line, new_first_line, new_end_line) per changed run, end exclusive."""
    start, old_end, new_end = changed_span(old, new)
    if start == old_end and start == new_end:
        return
    first_line = count_lines(old[:start])  # start is a line start
    old_lines = split_lines(old[start:old_end])
    new_lines = split_lines(new[start:new_end])
    for _, i1, i2, j1, j2 in line_opcodes(old_lines, new_lines):
        yield first_line + i1, first_line + i2, first_line + j1, first_line + j2


# Characters that belong to the preceding character (combining marks, joiners, variation
# selectors, emoji modifiers and tags): an edit boundary must not fall just before them.
def _extends_previous(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or char == "\u200d"
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _safe_boundary(a: str, b: str, offset_a: int, offset_b: int) -> bool:
    """May an edit start or end here without splitting a character cluster or a CRLF?"""
    for text, offset in ((a, offset_a), (b, offset_b)):
        after = text[offset] if offset < len(text) else ""
        if offset > 0:
            before = text[offset - 1]
            if before == "\u200d" or _is_regional_indicator(before):
                return False
            if before == "\r" and after == "\n":
                return False
        if after and _extends_previous(after):
            return False
    return True


def _trim(old_chunk: str, new_chunk: str) -> tuple[int, int]:
    """Common (prefix, suffix) lengths of two chunks that keep grapheme clusters and CRLF whole."""
    prefix = common_prefix_length(old_chunk, new_chunk)
    while prefix > 0 and not _safe_boundary(old_chunk, new_chunk, prefix, prefix):
        prefix -= 1
    limit = min(len(old_chunk), len(new_chunk)) - prefix
    suffix = common_suffix_length(old_chunk, new_chunk, limit)
    while suffix > 0 and not _safe_boundary(
        old_chunk, new_chunk, len(old_chunk) - suffix, len(new_chunk) - suffix
    ):
        suffix -= 1
    return prefix, suffix


def minimal_edits(old: str, new: str) -> list[Edit]:
    """Edits (offsets into ``old``, in document order) that turn ``old`` into ``new``.

    Only changed lines are touched; within a changed run, the common start and end are kept
    (an intra-line edit) when that makes the edit smaller.
    """
    if old == new:
        return []
    start, old_end, new_end = changed_span(old, new)
    old_lines = split_lines(old[start:old_end])
    new_lines = split_lines(new[start:new_end])
    old_offsets = [start]
    for line in old_lines:
        old_offsets.append(old_offsets[-1] + len(line))
    edits: list[Edit] = []
    for tag, i1, i2, j1, j2 in line_opcodes(old_lines, new_lines):
        begin, end = old_offsets[i1], old_offsets[i2]
        replacement = "".join(new_lines[j1:j2])
        if tag == "replace":
            prefix, suffix = _trim(old[begin:end], replacement)
            begin, end = begin + prefix, end - suffix
            replacement = replacement[prefix : len(replacement) - suffix]
        edits.append(Edit(begin, end, replacement))
    return edits


_NO_NEWLINE = "\\ No newline at end of file\n"


def _git_lines(text: str) -> list[str]:
    """Lines as git sees them: only ``\\n`` ends a line."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def diff_path(path: str) -> str:
    """The path as it appears after ``a/`` / ``b/``: forward slashes, no leading slash."""
    return path.replace("\\", "/").lstrip("/") or "file"


def unified_diff(old: str, new: str, path: str, *, context: int = 3) -> str:
    """A unified diff with ``a/`` ``b/`` headers that ``git apply`` accepts; "" when equal."""
    if old == new:
        return ""
    name = diff_path(path)
    out: list[str] = []
    for line in difflib.unified_diff(
        _git_lines(old), _git_lines(new), f"a/{name}", f"b/{name}", n=context, lineterm="\n"
    ):
        if line.endswith("\n"):
            out.append(line)
        else:
            out.append(line + "\n")
            out.append(_NO_NEWLINE)
    return "".join(out)
