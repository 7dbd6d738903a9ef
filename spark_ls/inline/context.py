"""The text around the cursor that an inline completion is asked for.

The window (``prefix`` + ``suffix``) is the enclosing scope as picked by
:func:`spark_ls.context.picker.pick_context`, widened to a few lines either side of the cursor
and cut line by line (farthest first) to the budget. The *stable* context (``header``: imports,
the enclosing class header, definitions the window references, from this file and other open
ones) is rendered separately so prompts can put it first: it rarely changes between keystrokes,
so a provider's prompt cache (or llama.cpp's KV cache) reuses it.
"""

from __future__ import annotations

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


def _line_bounds(snap: Snapshot, line: int) -> tuple[int, int]:
    start = snap.offset_of_line(line)
    end = snap.offset_of_line(line + 1) if line + 1 < snap.line_count else len(snap.text)
    return start, end


def build_context(
    snap: Snapshot,
    offset: int,
    *,
    path: str,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    others: Sequence[tuple[str, Snapshot]] = (),
) -> InlineContext:
    """The context for a completion at ``offset`` (clamped to the text)."""
    text = snap.text
    offset = max(0, min(offset, len(text)))
    line = snap.line_of_offset(offset) if text else 0
    line_start = snap.offset_of_line(line) if text else 0
    _, line_end = _line_bounds(snap, line) if text else (0, 0)
    line_text = text[line_start:line_end]
    body_end = line_start + len(line_text.rstrip("\r\n"))
    newline = "\r\n" if "\r\n" in text[:10000] else "\n"
    language = snap.language.name if snap.language else None
    comment = (snap.language.comment_line if snap.language else None) or "#"
    budget_chars = max(200, budget_tokens * 4)
    window_chars = int(budget_chars * WINDOW_SHARE)

    if not text:
        return InlineContext(path, language, comment, 0, 0, 0, "", "", "", "", "", newline)

    picked = pick_context(snap, line, line, path=path, budget_tokens=budget_tokens, others=others)
    last = snap.line_count - 1
    first_line = max(0, min(picked.region[0], line - MIN_LINES_ABOVE))
    last_line = min(last, max(picked.region[1], line + MIN_LINES_BELOW))
    # Cut to the budget: drop the line farthest from the cursor until the window fits, keeping
    # twice as much above as below (what precedes the cursor predicts it best).
    size = snap.offset_of_line(last_line + 1) - snap.offset_of_line(first_line) if last_line + 1 <= last else len(text) - snap.offset_of_line(first_line)
    while size > window_chars and (first_line < line or last_line > line):
        above, below = line - first_line, last_line - line
        if below > 0 and (above == 0 or below * 2 >= above):
            lo, hi = _line_bounds(snap, last_line)
            last_line -= 1
        else:
            lo, hi = _line_bounds(snap, first_line)
            first_line += 1
        size -= hi - lo
    window_start = snap.offset_of_line(first_line)
    window_end = _line_bounds(snap, last_line)[1]
    prefix = text[window_start:offset]
    suffix = text[offset:window_end]
    if len(prefix) + len(suffix) > window_chars:  # one very long line: cut inside it
        keep_before = max(0, window_chars * 2 // 3)
        prefix = prefix[-keep_before:]
        suffix = suffix[: max(0, window_chars - len(prefix))]

    header_parts: list[str] = []
    used = 0
    header_room = budget_chars - len(prefix) - len(suffix)
    for section in picked.sections:
        if section.role == "target":
            continue
        if section.path in ("", path) and not (section.end_line < first_line or section.start_line > last_line):
            continue  # already in the window
        where = section.path if section.path and section.path != path else "this file"
        title = f"{comment} {where}, lines {section.start_line + 1}-{section.end_line + 1} ({section.role}{', signature only' if section.elided else ''})"
        body = section.text if section.text.endswith(("\n", "\r")) else section.text + "\n"
        piece = f"{title}\n{body}"
        if used + len(piece) > header_room:
            continue
        header_parts.append(piece)
        used += len(piece)
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
        header="".join(header_parts),
        newline=newline,
    )
