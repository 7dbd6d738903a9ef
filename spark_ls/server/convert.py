"""Pure conversions between the engine's coordinates and LSP's.

The engine speaks 0-based lines and Python ``str`` offsets (code points). LSP positions count
``character`` in the negotiated encoding: UTF-16 code units by default, UTF-8 bytes or UTF-32
code points when negotiated. Positions past the end of a line clamp to the line end (clients do
send them); positions past the last line clamp to the end of the document.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence

from lsprotocol import types

from spark_ls.diffs import Edit

UTF8 = "utf-8"
UTF16 = "utf-16"
UTF32 = "utf-32"


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class LineIndex:
    """Offsets of line starts in a text, for position <-> offset conversion in O(log n).

    Lines end at ``\\n``, ``\\r\\n`` or a lone ``\\r``: the LSP definition, which clients use
    to count lines (and the one ``spark_ls.context`` uses).
    """

    __slots__ = ("starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        starts = [0]
        if "\r" in text:
            starts.extend(m.end() for m in _LINE_BREAK.finditer(text))
        else:
            find = text.find
            i = find("\n")
            while i != -1:
                starts.append(i + 1)
                i = find("\n", i + 1)
        self.starts = starts

    @classmethod
    def from_line_starts(cls, text: str, line_starts: list[int]) -> LineIndex:
        """The index of ``text`` from ``spark_ls.context``'s line table (the start of each line
        plus the end of the text; same line definition), without rescanning the text."""
        index = cls.__new__(cls)
        index.text = text
        # The context table ends with len(text); here a line starts there only after a line break.
        index.starts = line_starts if text[-1:] in ("\n", "\r") or not text else line_starts[:-1]
        return index

    def line_text(self, line: int) -> str:
        """The line's content without its line ending."""
        start = self.starts[line]
        end = self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)
        if end > start and self.text[end - 1] == "\n":
            end -= 1
        if end > start and self.text[end - 1] == "\r":
            end -= 1
        return self.text[start:end]

    def line_of(self, offset: int) -> int:
        return bisect_right(self.starts, offset) - 1


def _units(ch: str, encoding: str) -> int:
    code = ord(ch)
    if encoding == UTF16:
        return 2 if code > 0xFFFF else 1
    if encoding == UTF8:
        return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
    return 1


def column_to_units(line_text: str, column: int, encoding: str) -> int:
    """Code-point column -> LSP character in ``encoding``."""
    if encoding == UTF32:
        return column
    prefix = line_text[:column]
    if encoding == UTF16:
        return len(prefix.encode("utf-16-le")) // 2
    return len(prefix.encode("utf-8"))


def units_to_column(line_text: str, character: int, encoding: str) -> int:
    """LSP character in ``encoding`` -> code-point column (clamped; never splits a character)."""
    if encoding == UTF32:
        return min(character, len(line_text))
    if line_text.isascii():
        return min(character, len(line_text))
    units = 0
    for column, ch in enumerate(line_text):
        if units >= character:
            return column
        units += _units(ch, encoding)
        if units > character:  # the position points inside a character: keep it whole
            return column
    return len(line_text)


def offset_at(index: LineIndex, position: types.Position, encoding: str) -> int:
    if position.line < 0:
        return 0
    if position.line >= len(index.starts):
        return len(index.text)
    line_text = index.line_text(position.line)
    return index.starts[position.line] + units_to_column(line_text, max(position.character, 0), encoding)


def position_at(index: LineIndex, offset: int, encoding: str) -> types.Position:
    offset = max(0, min(offset, len(index.text)))
    line = index.line_of(offset)
    line_text = index.line_text(line)
    column = min(offset - index.starts[line], len(line_text))
    if offset - index.starts[line] > len(line_text):  # inside a CRLF pair: point at the line end
        column = len(line_text)
    return types.Position(line=line, character=column_to_units(line_text, column, encoding))


def range_to_offsets(index: LineIndex, rng: types.Range, encoding: str) -> tuple[int, int]:
    start = offset_at(index, rng.start, encoding)
    end = offset_at(index, rng.end, encoding)
    return (start, end) if start <= end else (end, start)


def range_to_lines(rng: types.Range) -> tuple[int, int]:
    """Inclusive 0-based line range; a range ending at column 0 does not include that line."""
    start, end = rng.start.line, rng.end.line
    if end > start and rng.end.character == 0:
        end -= 1
    return start, max(start, end)


def edits_to_text_edits(index: LineIndex, edits: Sequence[Edit], encoding: str) -> list[types.TextEdit]:
    return [
        types.TextEdit(
            range=types.Range(start=position_at(index, e.start, encoding), end=position_at(index, e.end, encoding)),
            new_text=e.new_text,
        )
        for e in edits
    ]


def text_document_edit(
    uri: str, version: int, index: LineIndex, edits: Sequence[Edit], encoding: str
) -> types.WorkspaceEdit:
    """A version-checked edit: clients refuse it if the document moved on."""
    return types.WorkspaceEdit(
        document_changes=[
            types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=edits_to_text_edits(index, edits, encoding),
            )
        ]
    )


def apply_text_edits(text: str, index: LineIndex, edits: Sequence[types.TextEdit], encoding: str) -> str:
    """Apply LSP TextEdits to ``text`` the way a client does (used by tests and the CLI)."""
    spans = sorted(
        ((offset_at(index, e.range.start, encoding), offset_at(index, e.range.end, encoding), e.new_text) for e in edits),
        reverse=True,
    )
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text
