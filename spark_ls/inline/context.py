"""The text around the cursor that an inline completion is asked for.

The window (``prefix`` + ``suffix``) is the enclosing scope as picked by
:func:`spark_ls.context.picker.pick_context`, widened to a few lines either side of the cursor
and cut line by line (farthest first) to the budget. The *stable* context (``header``: imports,
the enclosing class header, definitions the window references, from this file and other open
ones) is rendered separately so prompts can put it first: it rarely changes between keystrokes,
so a provider's prompt cache (or llama.cpp's KV cache) reuses it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from spark_ls.context.document import Snapshot
from spark_ls.context.picker import pick_context

# Lines always shown around the cursor (when the budget allows), whatever the scope.
MIN_LINES_ABOVE = 12
MIN_LINES_BELOW = 6
DEFAULT_BUDGET_TOKENS = 1024
# Of the budget: the window gets this share, the stable header the rest.
WINDOW_SHARE = 0.7


@dataclass(frozen=True)
class InlineContext:
    path: str
    language: str | None  # e.g. "python"
    comment: str  # the language's line-comment token ("#", "//"), for rendering the header
    offset: int  # the cursor, a str offset into the document
    line: int  # 0-based cursor line
    line_start: int  # offset of the cursor line's first character
    line_prefix: str  # the cursor line up to the cursor
    line_rest: str  # the cursor line after the cursor (no line ending)
    prefix: str  # the window before the cursor (starts at a line start)
    suffix: str  # the window after the cursor (ends at a line end)
    header: str  # stable context, rendered as code with comment titles; may be ""
    newline: str = "\n"  # the document's line ending

    @property
    def indent(self) -> str:
        """The cursor line's indentation (or the line prefix itself when it is all blank)."""
        stripped = self.line_prefix.lstrip(" \t")
        return self.line_prefix[: len(self.line_prefix) - len(stripped)]

    @property
    def window_start(self) -> int:
        return self.offset - len(self.prefix)

    @property
    def window_end(self) -> int:
        return self.offset + len(self.suffix)


def line_table(snap: Snapshot) -> list[int] | None:
    """The snapshot's line starts (kept per edit by the document, so free on the keystroke path)
    when they agree with counting ``\n`` (no ``\r`` in the text); None otherwise."""
    if "\r" in snap.text:
        return None
    return snap.line_starts()


def line_of(snap: Snapshot, offset: int) -> int:
    """The 0-based line (counting ``\n``) of ``offset``: a bisection of the line table."""
    table = line_table(snap)
    if table is None:
        return snap.text.count("\n", 0, offset)
    return _bisect_line(table, snap.text, offset)


def _bisect_line(table: list[int], text: str, offset: int) -> int:
    line = bisect.bisect_right(table, offset) - 1
    if line == len(table) - 1 and line > 0 and not text.endswith("\n"):
        line -= 1  # the end of a text without a final line break is on its last line
    return max(0, line)


class _Lines:
    """Line offsets near one cursor: from the snapshot's line table when it has one, else found
    by scanning from the cursor (``str.find``), never a split of the whole text."""

    def __init__(self, text: str, offset: int, table: list[int] | None = None) -> None:
        self.text = text
        self.table = table
        if table is not None and len(table) > 1:
            self.line = _bisect_line(table, text, offset)
            self.start = table[self.line]
        else:
            self.line = text.count("\n", 0, offset)
            self.start = text.rfind("\n", 0, offset) + 1
        self._starts = {self.line: self.start}

    def start_of(self, line: int) -> int:
        line = max(0, line)
        table = self.table
        if table is not None and len(table) > 1:
            return table[min(line, len(table) - 1)]
        if line in self._starts:
            return self._starts[line]
        near = min(self._starts, key=lambda k: abs(k - line))
        at, pos = near, self._starts[near]
        while at < line:
            found = self.text.find("\n", pos)
            if found < 0:
                return len(self.text)
            at, pos = at + 1, found + 1
            self._starts[at] = pos
        while at > line:
            pos = self.text.rfind("\n", 0, pos - 1) + 1
            at -= 1
            self._starts[at] = pos
        return pos

    def bounds(self, line: int) -> tuple[int, int]:
        """(start, end) of a line, its ending included."""
        start = self.start_of(line)
        found = self.text.find("\n", start)
        return start, len(self.text) if found < 0 else found + 1

    def last_line(self) -> int:
        if self.table is not None and len(self.table) > 1:
            return len(self.table) - 2
        return self.text.count("\n") - (1 if self.text.endswith("\n") else 0)


# Node types (any grammar) that make a scope worth showing whole around the cursor.
_SCOPE_SUFFIXES = (
    "function_definition", "class_definition", "decorated_definition", "function_declaration",
    "method_declaration", "method_definition", "class_declaration", "constructor_declaration",
    "function_item", "impl_item", "struct_item", "trait_item", "arrow_function", "function_expression",
    "class_specifier", "struct_specifier", "interface_declaration",
)


def enclosing_lines(snap: Snapshot, offset: int) -> tuple[int, int] | None:
    """Inclusive line range of the innermost function/class around ``offset``: a walk up the tree
    from the cursor's node (microseconds; no whole-file analysis)."""
    if snap.tree is None or not snap.text:
        return None
    line = line_of(snap, offset)
    column = len(snap.text[snap.text.rfind("\n", 0, offset) + 1 : offset].encode("utf-8"))
    node = snap.tree.root_node.descendant_for_point_range((line, column), (line, column))
    while node is not None:
        if node.type.endswith(_SCOPE_SUFFIXES) and node.end_point[0] > node.start_point[0]:
            return node.start_point[0], node.end_point[0]
        node = node.parent
    return None


@dataclass(frozen=True)
class StableSection:
    """A piece of stable context: imports, a class header, a definition the cursor's code uses."""

    path: str
    start_line: int
    end_line: int
    role: str
    text: str
    elided: bool = False


def stable_sections(
    snap: Snapshot,
    offset: int,
    *,
    path: str,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    others: Sequence[tuple[str, Snapshot]] = (),
) -> tuple[StableSection, ...]:
    """The stable context for a cursor (tree-sitter: imports, enclosing class, referenced
    definitions, definitions in other open files), by :func:`spark_ls.context.picker.pick_context`.

    This is the costly part (it analyses the whole file): the LSP layer computes it off the
    keystroke path and reuses it while the user types; it changes rarely, which is the point."""
    if not snap.text:
        return ()
    line = snap.line_of_offset(offset)
    picked = pick_context(snap, line, line, path=path, budget_tokens=budget_tokens, others=others)
    return tuple(
        StableSection(s.path or path, s.start_line, s.end_line, s.role, s.text, s.elided)
        for s in picked.sections
        if s.role != "target"
    )


def render_header(
    sections: Sequence[StableSection], *, path: str, comment: str, room: int, window: tuple[int, int]
) -> str:
    parts: list[str] = []
    used = 0
    first_line, last_line = window
    for section in sections:
        if section.path == path and not (section.end_line < first_line or section.start_line > last_line):
            continue  # already in the window
        where = section.path if section.path != path else "this file"
        elided = ", signature only" if section.elided else ""
        title = f"{comment} {where}, lines {section.start_line + 1}-{section.end_line + 1} ({section.role}{elided})"
        body = section.text if section.text.endswith(("\n", "\r")) else section.text + "\n"
        piece = f"{title}\n{body}"
        if used + len(piece) > room:
            continue
        parts.append(piece)
        used += len(piece)
    return "".join(parts)


def build_context(
    snap: Snapshot,
    offset: int,
    *,
    path: str,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    others: Sequence[tuple[str, Snapshot]] = (),
    sections: Sequence[StableSection] | None = None,
) -> InlineContext:
    """The context for a completion at ``offset`` (clamped to the text). ``sections``: stable
    context computed earlier (see :func:`stable_sections`); None computes it now."""
    text = snap.text
    offset = max(0, min(offset, len(text)))
    newline = "\r\n" if "\r\n" in text[:10000] else "\n"
    language = snap.language.name if snap.language else None
    comment = (snap.language.comment_line if snap.language else None) or "#"
    if not text:
        return InlineContext(path, language, comment, 0, 0, 0, "", "", "", "", "", newline)
    lines = _Lines(text, offset, line_table(snap))
    line = lines.line
    line_start, line_end = lines.bounds(line)
    body_end = line_start + len(text[line_start:line_end].rstrip("\r\n"))
    budget_chars = max(200, budget_tokens * 4)
    window_chars = int(budget_chars * WINDOW_SHARE)

    last = lines.last_line()
    scope = enclosing_lines(snap, offset) or (line, line)
    first_line = max(0, min(scope[0], line - MIN_LINES_ABOVE))
    last_line = min(last, max(scope[1], line + MIN_LINES_BELOW))
    # Cut to the budget: drop the line farthest from the cursor until the window fits, keeping
    # twice as much above as below (what precedes the cursor predicts it best). Scope lines far
    # beyond the budget are skipped at once (a long function costs no line-by-line walk).
    first_line = max(first_line, line - window_chars // 2)
    last_line = min(last_line, line + window_chars // 4)
    size = lines.bounds(last_line)[1] - lines.start_of(first_line)
    while size > window_chars and (first_line < line or last_line > line):
        above, below = line - first_line, last_line - line
        if below > 0 and (above == 0 or below * 2 >= above):
            lo, hi = lines.bounds(last_line)
            last_line -= 1
        else:
            lo, hi = lines.bounds(first_line)
            first_line += 1
        size -= hi - lo
    window_start = lines.start_of(first_line)
    window_end = lines.bounds(last_line)[1]
    prefix = text[window_start:offset]
    suffix = text[offset:window_end]
    if len(prefix) + len(suffix) > window_chars:  # one very long line: cut inside it
        keep_before = max(0, window_chars * 2 // 3)
        prefix = prefix[-keep_before:]
        suffix = suffix[: max(0, window_chars - len(prefix))]

    if sections is None:
        sections = stable_sections(snap, offset, path=path, budget_tokens=budget_tokens, others=others)
    header = render_header(
        sections, path=path, comment=comment, room=budget_chars - len(prefix) - len(suffix), window=(first_line, last_line)
    )
    return InlineContext(
        path=path,
        language=language,
        comment=comment,
        offset=offset,
        line=line,
        line_start=line_start,
        line_prefix=text[line_start:offset],
        line_rest=text[offset:body_end],
        prefix=prefix,
        suffix=suffix,
        header=header,
        newline=newline,
    )
