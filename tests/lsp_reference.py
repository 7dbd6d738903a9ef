"""LSP's own definition of lines and positions, written plainly, as the reference the server's
text sync is checked against (tests/test_reliability_documents.py, test_reliability_sync_stdio.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Pieces chosen to break naive implementations: surrogate pairs (emoji, a flag made of two
# regional indicators), combining marks, every LSP line ending, line separators that are *not*
# LSP line endings (str.splitlines would split there), tabs, NUL, and multi-byte UTF-8.
PIECES = [
    "a", "b", "x", " ", "\t", "def f():\n", "    return 1\n", "(", ")", ":",
    "\n", "\r\n", "\r", "\r\r\n", "\n\r",
    "é", "e\u0301", "€", "😀", "🇫🇷", "𝔘", "\u200d", "\u2028", "\u0085", "\x0c", "\x0b", "\x00",
]


# ---------------------------------------------------------------------- the reference (LSP spec)

_REF_LINE = re.compile(r"[^\r\n]*(\r\n|\r|\n)|[^\r\n]*\Z")


@dataclass
class RefLine:
    start: int  # str offset
    content: str  # without the line ending


def ref_lines(text: str) -> list[RefLine]:
    """Every LSP line, including the empty last line after a final line ending."""
    lines: list[RefLine] = []
    pos = 0
    while True:
        match = _REF_LINE.match(text, pos)
        assert match is not None
        ending = match.group(1) or ""
        lines.append(RefLine(pos, match.group(0)[: len(match.group(0)) - len(ending)]))
        if not ending:
            return lines
        pos = match.end()


def unit_len(ch: str, encoding: str) -> int:
    if encoding == "utf-16":
        return len(ch.encode("utf-16-le")) // 2
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    return 1


def ref_offset(text: str, line: int, character: int, encoding: str) -> int:
    lines = ref_lines(text)
    if line >= len(lines):
        return len(text)
    entry = lines[line]
    units = 0
    for column, ch in enumerate(entry.content):
        width = unit_len(ch, encoding)
        if units + width > character:  # at or inside this character: its start
            return entry.start + column
        units += width
    return entry.start + len(entry.content)


def ref_apply(text: str, changes: list[tuple[int, int, int, int, str] | str], encoding: str) -> str:
    for change in changes:
        if isinstance(change, str):
            text = change
            continue
        sl, sc, el, ec, new = change
        start, end = ref_offset(text, sl, sc, encoding), ref_offset(text, el, ec, encoding)
        text = text[:start] + new + text[end:]
    return text


def line_units(text: str, encoding: str) -> list[int]:
    return [sum(unit_len(c, encoding) for c in line.content) for line in ref_lines(text)]
