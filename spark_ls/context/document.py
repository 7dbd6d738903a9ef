"""A document's text plus its incrementally maintained tree-sitter tree, and immutable snapshots.

Coordinates: Python ``str`` offsets (code points) and 0-based lines. Lines break at ``\\n``,
``\\r\\n`` and ``\\r`` (the LSP definition); tree-sitter's UTF-8 byte positions are converted
here via byte offsets, never via tree-sitter rows (which only count ``\\n``).
"""

from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from itertools import accumulate

import tree_sitter

from spark_ls.context.languages import LanguageSpec

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


# Characters str.splitlines() breaks at that are not line endings for LSP, tree-sitter or git.
_OTHER_BREAKS = ("\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def split_lines(text: str) -> list[str]:
    """Lines with their endings kept; ``"a\\n"`` is one line, ``""`` is no lines. The one
    definition of a line (spark_ls.diffs uses it too)."""
    if not any(char in text for char in _OTHER_BREAKS):  # substring search: far faster than the regex
        return text.splitlines(keepends=True)
    return _LINE.findall(text)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """An immutable view: the text, a tree no document will edit any more, and the language.

    Safe to hand to another task or thread while the document keeps changing.
    """

    text: str
    tree: tree_sitter.Tree | None
    language: LanguageSpec | None
    data: bytes = field(default=b"", repr=False)  # ``text`` as UTF-8 (filled in when empty)

    def __post_init__(self) -> None:
        if not self.data and self.text:
            object.__setattr__(self, "data", self.text.encode("utf-8"))

    @cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)

    @cached_property
    def _line_starts(self) -> list[int]:
        return list(accumulate(map(len, self.lines), initial=0))  # one more entry than lines: the end

    def line_starts(self) -> list[int]:
        """Start offsets of the lines plus the end of the text (shared: do not mutate)."""
        return self._line_starts

    @cached_property
    def _is_ascii(self) -> bool:
        return len(self.data) == len(self.text)

    @cached_property
    def _byte_line_starts(self) -> list[int]:
        return list(accumulate((len(line.encode("utf-8")) for line in self.lines), initial=0))

    @property
    def line_count(self) -> int:
        return len(self.lines)

    def offset_of_line(self, line: int) -> int:
        """The str offset where ``line`` starts; ``line_count`` gives the end of the text."""
        starts = self._line_starts
        return starts[max(0, min(line, len(starts) - 1))]

    def line_of_offset(self, offset: int) -> int:
        """The 0-based line holding str ``offset`` (the end of the text maps to the last line)."""
        starts = self._line_starts
        line = bisect.bisect_right(starts, offset) - 1
        return max(0, min(line, len(self.lines) - 1))

    def position_of(self, offset: int) -> tuple[int, int]:
        """(line, column in code points) of a str offset."""
        line = self.line_of_offset(offset)
        return line, offset - self._line_starts[line]

    def offset_of_byte(self, byte_offset: int) -> int:
        """Convert a UTF-8 byte offset (as tree-sitter reports) to a str offset."""
        if self._is_ascii:
            return byte_offset
        starts = self._byte_line_starts
        line = max(0, min(bisect.bisect_right(starts, byte_offset) - 1, len(self.lines) - 1))
        if not self.lines:
            return 0
        within = byte_offset - starts[line]
        prefix = self.lines[line].encode("utf-8")[:within]
        return self._line_starts[line] + len(prefix.decode("utf-8", errors="ignore"))

    def node_span(self, node: tree_sitter.Node) -> tuple[int, int]:
        """(start, end) str offsets of a node."""
        return self.offset_of_byte(node.start_byte), self.offset_of_byte(node.end_byte)

    def node_lines(self, node: tree_sitter.Node) -> tuple[int, int]:
        """Inclusive (start_line, end_line) of a node; a trailing newline does not add a line."""
        start, end = self.node_span(node)
        return self.span_lines(start, end)

    def span_lines(self, start: int, end: int) -> tuple[int, int]:
        first = self.line_of_offset(start)
        return first, max(first, self.line_of_offset(max(start, end - 1)))

    def line_text(self, start_line: int, end_line: int) -> str:
        """The text of lines ``start_line..end_line`` inclusive, endings kept."""
        return self.text[self.offset_of_line(start_line) : self.offset_of_line(end_line + 1)]


class SourceDocument:
    """A text document kept parsed; edits reparse incrementally.

    ``apply_change`` and ``snapshot`` may be called from different threads; a lock keeps each
    call atomic.
    """

    def __init__(self, text: str, language: LanguageSpec | None) -> None:
        self.language = language
        self._lock = threading.Lock()
        self._text = text
        self._data = bytearray(text.encode("utf-8"))
        self._ascii = len(self._data) == len(text)
        self._parser = language.parser() if language is not None else None
        self._tree: tree_sitter.Tree | None = self._parser.parse(self._data) if self._parser else None
        self._snapshot: Snapshot | None = None  # reused until the next change, so per-snapshot caches hit
        # The text's lines and their start offsets, kept up to date by edits once a snapshot has
        # computed them (a keystroke then costs a few lines, not a split of the whole text).
        self._lines: list[str] | None = None
        self._line_starts: list[int] | None = None
        # The one edit since the last snapshot (the edited old tree and the byte range), so the
        # next snapshot's index can reuse the last one's around it; None after two or more edits.
        self._last_snapshot: Snapshot | None = None
        self._edits_since_snapshot = 0
        self._single_edit: tuple[tree_sitter.Tree, int, int, int] | None = None

    @property
    def text(self) -> str:
        return self._text

    @property
    def tree(self) -> tree_sitter.Tree | None:
        return self._tree

    def _locate(self, offset: int) -> tuple[int, tuple[int, int]]:
        """Byte offset and tree-sitter point (row counts ``\\n`` only, column in bytes)."""
        text = self._text
        row = text.count("\n", 0, offset)
        line_start = text.rfind("\n", 0, offset) + 1
        if self._ascii:
            return offset, (row, offset - line_start)
        column = len(text[line_start:offset].encode("utf-8"))
        # Byte offset of the line start: encode only the text before it (no whole-text re-encode).
        return len(text[:line_start].encode("utf-8")) + column, (row, column)

    def apply_change(self, start: int, end: int, new_text: str) -> None:
        """Replace ``text[start:end]`` (str offsets) with ``new_text`` and reparse incrementally."""
        with self._lock:
            if not 0 <= start <= end <= len(self._text):
                raise ValueError(f"change {start}..{end} is outside the document (length {len(self._text)})")
            start_byte, start_point = self._locate(start)
            end_byte, old_end_point = self._locate(end)
            new_bytes = new_text.encode("utf-8")
            newlines = new_text.count("\n")
            if newlines:
                tail = new_text[new_text.rfind("\n") + 1 :]
                new_end_point = (start_point[0] + newlines, len(tail.encode("utf-8")))
            else:
                new_end_point = (start_point[0], start_point[1] + len(new_bytes))
            self._update_lines(start, end, new_text)
            self._snapshot = None
            self._text = self._text[:start] + new_text + self._text[end:]
            self._data[start_byte:end_byte] = new_bytes
            # Conservative: deleting the last non-ASCII character keeps the slower exact path.
            self._ascii = self._ascii and len(new_bytes) == len(new_text)
            if self._tree is not None and self._parser is not None:
                new_end_byte = start_byte + len(new_bytes)
                self._tree.edit(
                    start_byte=start_byte,
                    old_end_byte=end_byte,
                    new_end_byte=new_end_byte,
                    start_point=start_point,
                    old_end_point=old_end_point,
                    new_end_point=new_end_point,
                )
                edited = self._tree
                self._tree = self._parser.parse(self._data, edited)
                self._edits_since_snapshot += 1
                single = self._edits_since_snapshot == 1
                self._single_edit = (edited, start_byte, end_byte, new_end_byte) if single else None

    def _update_lines(self, start: int, end: int, new_text: str) -> None:
        """Keep the line table in step with ``text[start:end] = new_text`` (call before the change)."""
        if self._lines is None and self._snapshot is not None and "lines" in self._snapshot.__dict__:
            self._lines, self._line_starts = self._snapshot.lines, self._snapshot._line_starts
        lines, starts = self._lines, self._line_starts
        if lines is None or starts is None:
            return
        if not lines:
            self._lines = split_lines(new_text)
            self._line_starts = list(accumulate(map(len, self._lines), initial=0))
            return
        last = len(lines) - 1
        first_line = max(0, min(bisect.bisect_right(starts, start) - 1, last) - 1)  # one line of margin
        last_line = min(last, max(0, min(bisect.bisect_right(starts, end) - 1, last)) + 1)  # for "\r\n"
        seg_start, seg_end = starts[first_line], starts[last_line + 1]
        old = self._text
        middle = split_lines(old[seg_start:start] + new_text + old[end:seg_end])
        delta = len(new_text) - (end - start)
        self._lines = lines[:first_line] + middle + lines[last_line + 1 :]
        self._line_starts = (starts[: first_line + 1]
                             + list(accumulate(map(len, middle), initial=seg_start))[1:]
                             + [offset + delta for offset in starts[last_line + 2 :]])

    def line_starts(self) -> list[int]:
        """Start offsets of the current text's lines plus its end (shared: do not mutate); from
        now on kept up to date by edits, so a caller never rescans the whole text."""
        with self._lock:
            if self._lines is None or self._line_starts is None:
                snap = self._snapshot
                if snap is not None and "lines" in snap.__dict__:
                    self._lines, self._line_starts = snap.lines, snap._line_starts
                else:
                    self._lines = split_lines(self._text)
                    self._line_starts = list(accumulate(map(len, self._lines), initial=0))
            return self._line_starts

    def replace_all(self, text: str) -> None:
        """Full-text sync: keeps the tree incremental over the common prefix/suffix."""
        old = self._text
        prefix = _common_prefix(old, text)
        suffix = _common_prefix(old[prefix:][::-1], text[prefix:][::-1])
        self.apply_change(prefix, len(old) - suffix, text[prefix : len(text) - suffix])

    def snapshot(self) -> Snapshot:
        """An immutable copy: the tree is ``tree.copy()`` so later edits cannot touch it.

        Without changes in between, the same snapshot object is returned (analysis caches hit).
        """
        with self._lock:
            if self._snapshot is None:
                tree = self._tree.copy() if self._tree is not None else None
                snap = Snapshot(self._text, tree, self.language, bytes(self._data))
                if self._lines is not None and self._line_starts is not None:
                    snap.__dict__["lines"] = self._lines  # what the cached properties would compute
                    snap.__dict__["_line_starts"] = self._line_starts
                previous = self._last_snapshot
                if previous is not None and self._single_edit is not None:
                    # Strong, but one level only: the previous snapshot forgets its own base.
                    previous.__dict__.pop("derived_from", None)
                    snap.__dict__["derived_from"] = (previous, *self._single_edit)
                self._last_snapshot, self._single_edit, self._edits_since_snapshot = snap, None, 0
                self._snapshot = snap
            return self._snapshot


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by binary search over C-speed slice comparisons."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def snapshot_of(text: str, language: LanguageSpec | None) -> Snapshot:
    """Parse ``text`` once and return a snapshot (for headless checks and one-off use)."""
    return SourceDocument(text, language).snapshot()
