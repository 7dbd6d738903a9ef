"""Line helpers shared by the engine.

Lines break at ``\\r\\n``, ``\\r`` and ``\\n`` (the LSP definition, the same as
``spark_ls.context``), so line numbers agree with the ranges the context picker hands out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import overload

from spark_ls.context.document import split_lines  # the one definition of a line

__all__ = ["split_lines"]  # re-exported for the diffs modules

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_INDENT = re.compile(r"[ \t]*")
TAB_WIDTH = 4


# str.splitlines also breaks at these; where none occur it agrees with _LINE and is faster.
_OTHER_BREAKS = ("\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _has_other_breaks(text: str) -> bool:
    return any(char in text for char in _OTHER_BREAKS)  # substring search: far faster than a regex


has_other_breaks = _has_other_breaks  # for the engine's other modules


def count_lines(text: str) -> int:
    """How many lines :func:`split_lines` would give."""
    if "\r" not in text:
        return text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    crlf = text.count("\r\n")
    breaks = text.count("\n") + text.count("\r") - crlf
    return breaks + (1 if text and not text.endswith(("\n", "\r")) else 0)


def line_contents(text: str) -> list[str]:
    """Lines without their endings (as many as :func:`split_lines` gives)."""
    if not _has_other_breaks(text):
        return text.splitlines()
    return [content(line) for line in _LINE.findall(text)]


def line_ending(line: str) -> str:
    if line.endswith("\r\n"):
        return "\r\n"
    if line.endswith(("\n", "\r")):
        return line[-1]
    return ""


def content(line: str) -> str:
    """A line without its ending."""
    return line[: len(line) - len(line_ending(line))]


def dominant_ending(text: str) -> str:
    """The ending most lines use (``\\n`` for a text without any)."""
    if "\r" not in text:
        return "\n"
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    cr = text.count("\r") - crlf
    if crlf > lf and crlf >= cr:
        return "\r\n"
    if cr > lf and cr > crlf:
        return "\r"
    return "\n"


def indent_of(line: str) -> str:
    match = _INDENT.match(line)
    return match.group(0) if match else ""


def indent_width(indent: str) -> int:
    width = 0
    for char in indent:
        width = (width // TAB_WIDTH + 1) * TAB_WIDTH if char == "\t" else width + 1
    return width


def indent_unit(lines: list[str]) -> int | None:
    """The most common indentation step between consecutive non-blank lines, if any."""
    steps: Counter[int] = Counter()
    previous: int | None = None
    for line in lines:
        if not line.strip():
            continue
        width = indent_width(indent_of(line))
        if previous is not None and width > previous:
            steps[width - previous] += 1
        previous = width
    if not steps:
        return None
    return steps.most_common(1)[0][0]


def uses_tabs(lines: list[str]) -> bool:
    tabs = spaces = 0
    for line in lines:
        if line.startswith("\t"):
            tabs += 1
        elif line.startswith(" "):
            spaces += 1
    return tabs > spaces


def render_indent(width: int, tabs: bool) -> str:
    if tabs:
        return "\t" * (width // TAB_WIDTH) + " " * (width % TAB_WIDTH)
    return " " * width


class IndentMap:
    """Maps indentation widths from a model's text onto the file's: ``file = scale*model + shift``.

    Used when a model re-indented what it copied (2 spaces or tabs for a 4-space file, or a
    method dedented to column 0), so the lines it adds land at the file's indentation.
    """

    __slots__ = ("scale", "shift", "tabs")

    def __init__(self, scale: float, shift: float, tabs: bool) -> None:
        self.scale = scale
        self.shift = shift
        self.tabs = tabs

    def width(self, model_width: int) -> int | None:
        mapped = self.scale * model_width + self.shift
        if mapped < 0 or abs(mapped - round(mapped)) > 1e-9:
            return None
        return round(mapped)

    def apply(self, line: str) -> str | None:
        """Re-indent one line (its content, no ending); None when it cannot be mapped."""
        if not line.strip():
            return line  # whitespace-only lines carry no indentation to map
        indent = indent_of(line)
        width = self.width(indent_width(indent))
        if width is None:
            return None
        return render_indent(width, self.tabs) + line[len(indent) :]


def fit_indent_map(
    pairs: list[tuple[int, int]], model_unit: int | None, file_unit: int | None, tabs: bool
) -> IndentMap | None:
    """The linear map taking every model width in ``pairs`` to its file width, or None."""
    seen: dict[int, int] = {}
    for model_width, file_width in pairs:
        if seen.setdefault(model_width, file_width) != file_width:
            return None
    if not seen:
        return IndentMap(1.0, 0.0, tabs)
    ordered = sorted(seen.items())
    if len(ordered) >= 2:
        (m1, f1), (m2, f2) = ordered[0], ordered[-1]
        scale = (f2 - f1) / (m2 - m1)
        if scale <= 0:
            return None
        shift = f1 - scale * m1
        if any(abs(scale * m + shift - f) > 1e-9 for m, f in ordered):
            return None
        return IndentMap(scale, shift, tabs)
    scale = 1.0
    if model_unit and file_unit and model_unit != file_unit:
        scale = file_unit / model_unit
    model_width, file_width = ordered[0]
    return IndentMap(scale, file_width - scale * model_width, tabs)


class LazyLines(Sequence[str]):
    """The lines of a text (without endings, as :func:`line_contents` gives them), split only
    where they are read: a check that looks at a few dozen lines of a 10,000-line file must not
    pay for splitting all of it. ``anchor``: (line number, str offset of that line's start), a
    known place to walk from. Texts with ``\r`` or other line breaks are split up front."""

    __slots__ = ("_count", "_full", "_starts", "_text")

    def __init__(self, text: str, anchor: tuple[int, int] = (0, 0), *, plain: bool | None = None) -> None:
        """``plain``: the caller knows whether ``text`` breaks lines only at ``\n``."""
        self._text = text
        self._full: list[str] | None = None
        self._starts: dict[int, int] = {anchor[0]: anchor[1]}
        if plain is None:
            plain = "\r" not in text and not _has_other_breaks(text)
        if not plain:
            self._full = line_contents(text)
        self._count = -1 if self._full is None else len(self._full)

    def __len__(self) -> int:
        if self._count < 0:
            text = self._text
            self._count = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        return self._count

    def _start(self, index: int) -> int:
        known = min(self._starts, key=lambda line: abs(line - index))
        offset = self._starts[known]
        text = self._text
        while known < index:
            offset = text.index("\n", offset) + 1
            known += 1
            self._starts[known] = offset
        while known > index:
            offset = text.rindex("\n", 0, offset - 1) + 1 if known - 1 > 0 else 0
            known -= 1
            self._starts[known] = offset
        return offset

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if self._full is not None:
            return self._full[index]
        if index < 0 or index >= self._count >= 0:
            if index < 0:
                index += len(self)
            if not 0 <= index < len(self):
                raise IndexError(index)
        start = self._start(index)
        end = self._text.find("\n", start)
        return self._text[start : len(self._text) if end < 0 else end]

    def all(self) -> list[str]:
        """Every line (split once, then kept)."""
        if self._full is None:
            self._full = line_contents(self._text)
        return self._full
