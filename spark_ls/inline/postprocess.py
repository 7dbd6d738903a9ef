"""A raw model reply -> one suggestion that is safe to show as ghost text.

Rules (each a complaint users have about inline completions):

- **No echo.** A reply that repeats what is already typed on the line is cut after it.
- **No duplicated suffix.** When the reply rewrites what follows the cursor on its line (the
  closing ``)`` an editor auto-inserted), the suggestion's range covers that text, so accepting
  it does not leave ``))``. A multi-line reply that would push text after the cursor to its last
  line is cut to its first line. Lines the reply shares with the code that follows the cursor
  end the suggestion (the model reached existing code).
- **A syntactic boundary.** Mid-line: the rest of the statement (one line, or until brackets
  balance, or the block the line opens). On a blank line: the rest of the block (until a line
  dedents below the cursor's indentation), at most ``max_lines``.
- **Indentation kept.** A reply that starts with the indentation the cursor already stands in
  does not get it twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spark_ls.inline.context import InlineContext

MAX_LINES = 12
_FENCE = re.compile(r"^\s*```[\w+.-]*\s*$")
_MARKERS = ("<CURSOR>", "<|cursor|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_prefix|>", "<|endoftext|>", "<|file_sep|>")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_BLOCK_OPENER = re.compile(r"(?::|\{|\(|\[|=>|\bdo|\bthen)\s*(?:#.*|//.*)?$")
_CLOSING_LINE = re.compile(r"^\s*[)\]}]")


@dataclass(frozen=True)
class Suggestion:
    """Replace ``text[start:end]`` with ``new_text``. ``start`` is the cursor."""

    start: int
    end: int
    new_text: str

    def rebased(self, typed: str) -> Suggestion | None:
        """What is left after the user typed ``typed`` (a prefix of ``new_text``) at the cursor."""
        if not self.new_text.startswith(typed):
            return None
        left = self.new_text[len(typed) :]
        if not left.strip() and self.end == self.start:
            return None
        shift = len(typed)
        return Suggestion(self.start + shift, self.end + shift, left)


def clean_reply(raw: str) -> str:
    """Strip code fences, cursor / FIM markers and carriage returns from a reply."""
    text = raw.replace("\r\n", "\n")
    for marker in _MARKERS:
        if marker == "<|fim_middle|>" or marker == "<CURSOR>":
            text = text.replace(marker, "")
        else:
            text = text.split(marker, 1)[0]
    lines = text.split("\n")
    if lines and _FENCE.match(lines[0]):
        lines = lines[1:]
        for i, line in enumerate(lines):
            if _FENCE.match(line):
                lines = lines[:i]
                break
    elif any(_FENCE.match(line) for line in lines):
        lines = lines[: next(i for i, line in enumerate(lines) if _FENCE.match(line))]
    return "\n".join(lines)


def _indent_width(line: str) -> int:
    width = 0
    for ch in line:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width += 4
        else:
            break
    return width


def _depth(text: str) -> int:
    """Bracket depth change over ``text`` (strings and comments are not special-cased)."""
    depth = 0
    for ch in text:
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
    return depth


def _drop_echo(ctx: InlineContext, text: str) -> str:
    typed = ctx.line_prefix
    if typed.strip():
        if text.startswith(typed):
            return text[len(typed) :]
        if text.lstrip(" \t").startswith(typed.lstrip(" \t")) and typed.lstrip(" \t"):
            return text.lstrip(" \t")[len(typed.lstrip(" \t")) :]
    elif typed and text.startswith(typed) and text[len(typed) : len(typed) + 1] not in (" ", "\t"):
        return text[len(typed) :]  # the model re-typed the indentation the cursor stands in
    elif typed and text[:1] in (" ", "\t"):
        lead = len(text) - len(text.lstrip(" \t"))
        return text[min(lead, len(typed)) :]
    return text


def _next_code_lines(ctx: InlineContext, count: int = 2) -> list[str]:
    """The next non-blank lines after the cursor's line, stripped."""
    rest = ctx.suffix.split("\n")[1:]
    return [line.strip() for line in rest if line.strip()][:count]


def _cut_lines(ctx: InlineContext, lines: list[str], max_lines: int) -> list[str]:
    """Keep the lines up to the syntactic boundary (see the module docstring)."""
    base = _indent_width(ctx.line_prefix) if not ctx.line_prefix.strip() else _indent_width(ctx.indent)
    first_full = ctx.line_prefix + lines[0]
    kept = [lines[0]]
    mid_line = bool(ctx.line_prefix.strip())
    depth = _depth(first_full)
    opens_block = bool(_BLOCK_OPENER.search(first_full.rstrip())) or depth > 0
    if mid_line and not opens_block:
        return kept
    following = _next_code_lines(ctx)
    seen_code = bool(lines[0].strip())
    blank_run = 0
    for line in lines[1:]:
        if len(kept) >= max_lines:
            break
        if following and line.strip() and line.strip() == following[0]:
            break  # the model reached the code after the cursor
        if not line.strip():
            blank_run += 1
            if blank_run >= 2 or (mid_line and depth <= 0):
                break
            kept.append(line)
            continue
        blank_run = 0
        width = _indent_width(line)
        if depth > 0:
            kept.append(line)
            depth += _depth(line)
            if depth <= 0 and mid_line and not _BLOCK_OPENER.search(line.rstrip()):
                break
            continue
        if width < base or (width == base and mid_line and opens_block):
            if _CLOSING_LINE.match(line) and width == base:
                kept.append(line)  # the block's closing brace
            break
        if seen_code and width == base and not opens_block and mid_line:
            break
        kept.append(line)
        seen_code = True
        depth += _depth(line)
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    return kept


def finalize(ctx: InlineContext, raw: str, *, max_lines: int = MAX_LINES) -> Suggestion | None:
    """The suggestion for ``raw`` at ``ctx``'s cursor, or None when nothing useful is left."""
    text = _drop_echo(ctx, clean_reply(raw))
    if not text.strip():
        return None
    lines = _cut_lines(ctx, text.split("\n"), max_lines)
    rest = ctx.line_rest
    end = ctx.offset
    if rest.strip():
        tail = rest.strip()
        if lines[-1].rstrip().endswith(tail) and _rewrites_rest(ctx, "\n".join(lines), rest):
            end = ctx.offset + len(rest)  # the suggestion rewrites the rest of the line
        elif len(lines) > 1:
            lines = lines[:1]
            if lines[0].rstrip().endswith(tail) and _rewrites_rest(ctx, lines[0], rest):
                end = ctx.offset + len(rest)
    new_text = "\n".join(lines)
    if not rest or end > ctx.offset:
        new_text = new_text.rstrip(" \t")
    new_text = new_text.replace("\n", ctx.newline) if ctx.newline != "\n" else new_text
    if not new_text.strip():
        return None
    return Suggestion(ctx.offset, end, new_text)


def _imbalance(text: str) -> int:
    return abs(_depth(text)) + text.count('"') % 2 + text.count("'") % 2 + text.count("`") % 2


def _rewrites_rest(ctx: InlineContext, inserted: str, rest: str) -> bool:
    """Whether ``inserted`` already contains the line's ``rest`` (an auto-closed bracket or
    quote): replacing it leaves the line more balanced than inserting before it."""
    replaced = ctx.line_prefix + inserted.rstrip()
    kept = ctx.line_prefix + inserted + rest
    return _imbalance(replaced) <= _imbalance(kept) and replaced.rstrip() != kept.rstrip()


def unit_complete(ctx: InlineContext, partial: str, *, max_lines: int = MAX_LINES) -> bool:
    """Whether a streamed ``partial`` reply already holds the whole unit :func:`finalize` would
    keep, so the rest of the generation can be cancelled."""
    text = _drop_echo(ctx, clean_reply(partial))
    if "\n" not in text:
        return False
    lines = text.split("\n")
    complete = lines[:-1]  # the last line may still grow
    if not complete:
        return False
    first_full = ctx.line_prefix + complete[0]
    if ctx.line_prefix.strip() and _depth(first_full) <= 0 and not _BLOCK_OPENER.search(first_full.rstrip()):
        return True  # mid-line, the statement ends with its line
    kept = _cut_lines(ctx, complete, max_lines)
    return len(kept) < len(complete) or len(kept) >= max_lines


def first_line(ctx: InlineContext, partial: str) -> str | None:
    """The first complete line of a streamed reply (after echo removal), if there is one."""
    text = _drop_echo(ctx, clean_reply(partial))
    if "\n" not in text:
        return None
    line = text.split("\n", 1)[0]
    return line if line.strip() else None
