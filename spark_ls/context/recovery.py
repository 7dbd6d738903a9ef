"""Scopes in files with syntax errors: never let one definition swallow its siblings.

tree-sitter's error recovery can stretch a broken definition over the ones after it (Python's
``def greet(name):\\n    print("hi" + name`` takes the next ``def`` into its ERROR node), or drop
the broken definition altogether (JavaScript's missing ``}`` turns it into an expression). Only
where the tree has errors, this module uses the layout a human reads instead:

- **Bounding.** A scope whose subtree has an error ends before the first *sibling start* after
  its name: a non-blank line indented no deeper than the scope's first line that is neither a
  comment, nor inside a string or comment begun earlier, nor a bracket line (``}``, ``)``, ``{``;
  a closing bracket indented *less* than the scope closes an outer block and ends it too). Blank
  lines and the comments directly above that sibling (its doc comment) are left outside.
- **Recovery.** A line in an erroneous part of the file that opens an indented block and is not
  already a scope's first line is parsed on its own (its block, bounded as above, dedented); when
  that parse yields a function/method/class starting on its first line, the block becomes a
  scope. Lines directly above it at the same indentation that the same parse accepts as part of
  the definition (decorators, annotations) are included.

Everything here depends only on the text and the tree around a scope, so the range-limited scope
lookup (right after a keystroke) finds exactly what the whole-file one finds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import tree_sitter

from spark_ls.context.analysis import kind_node
from spark_ls.context.document import Snapshot

_OPENERS_CLOSERS = ")]}"
_STRINGY = ("string", "template", "heredoc", "char_literal", "rune_literal", "raw_string")
MAX_PREFIX_LINES = 3  # decorators/annotations looked for above a recovered definition


@dataclass(frozen=True)
class Recovered:
    kind: str
    name: str
    start_line: int
    end_line: int


def indent_of(snap: Snapshot, line: int) -> int | None:
    """Width of the line's leading whitespace (a tab counts 4), None for a blank line."""
    text = snap.lines[line].rstrip("\r\n")
    stripped = text.lstrip(" \t")
    if not stripped:
        return None
    lead = text[: len(text) - len(stripped)]
    return len(lead) + 3 * lead.count("\t")


def first_byte(snap: Snapshot, line: int) -> int:
    """UTF-8 byte offset of the line's first non-blank character (leading blanks are ASCII)."""
    text = snap.lines[line]
    starts = snap._line_starts if snap._is_ascii else snap._byte_line_starts
    return starts[line] + len(text) - len(text.lstrip(" \t"))


def _in_comment_or_string(snap: Snapshot, line: int) -> bool:
    """The line's first character is (part of) a comment, or inside a string begun earlier."""
    if snap.tree is None:
        return False
    byte = first_byte(snap, line)
    node: tree_sitter.Node | None = snap.tree.root_node.descendant_for_byte_range(byte, byte + 1)
    while node is not None and node.parent is not None:
        kind = node.type
        if "comment" in kind:
            return True
        if node.start_byte < byte and any(word in kind for word in _STRINGY) and not node.is_error:
            return True
        node = node.parent
    return False


def _sibling_start(snap: Snapshot, line: int, header_indent: int) -> bool | None:
    """True: the line starts something after the block; None: it closes an outer block (also an
    end); False: it belongs to the block (deeper, blank, bracket, comment, string)."""
    indent = indent_of(snap, line)
    if indent is None or indent > header_indent:
        return False
    first = snap.lines[line].lstrip(" \t")[0]
    if first in _OPENERS_CLOSERS:
        return None if indent < header_indent and first != "{" else False
    if first == "{":
        return False
    return not _in_comment_or_string(snap, line)


def chain(snap: Snapshot, line: int) -> list[int]:
    """Lines above ``line`` (and itself) that may open a block holding it, innermost first: each
    indented less than the previous one (or the same, above a bracket, comment or string line).
    Blank, comment and string lines are never links."""
    while line > 0 and indent_of(snap, line) is None:
        line -= 1
    indent = indent_of(snap, line)
    if indent is None:
        return []
    links = [line]
    limit = indent if _sibling_start(snap, line, indent) else indent + 1
    for above in range(line - 1, -1, -1):
        if limit <= 0:
            break
        other = indent_of(snap, above)
        if other is None or other >= limit:
            continue
        first = snap.lines[above].lstrip(" \t")[0]
        if first in _OPENERS_CLOSERS or first == "{":
            links.append(above)
            limit = other + 1
        elif not _in_comment_or_string(snap, above):
            links.append(above)
            limit = other
    return links


def bound_end(snap: Snapshot, header_line: int, search_from: int, hard_end: int) -> int:
    """The last line of the block opened at ``header_line``: before the first sibling start at or
    after ``search_from`` (without the blank lines and comments directly above it), else
    ``hard_end``."""
    header_indent = indent_of(snap, header_line) or 0
    for line in range(max(search_from, header_line + 1), hard_end + 1):
        verdict = _sibling_start(snap, line, header_indent)
        if verdict is False:
            continue
        end = line - 1
        if verdict:  # the sibling's own doc comment stays with it
            while end > header_line and indent_of(snap, end) is not None and _in_comment_or_string(snap, end) \
                    and (indent_of(snap, end) or 0) <= header_indent:
                end -= 1
        while end > header_line and indent_of(snap, end) is None:
            end -= 1
        return end
    return hard_end


def opens_block(snap: Snapshot, line: int, hard_end: int) -> bool:
    """The next non-blank line (up to ``hard_end``) is indented deeper than this one."""
    indent = indent_of(snap, line)
    if indent is None:
        return False
    for following in range(line + 1, hard_end + 1):
        other = indent_of(snap, following)
        if other is not None:
            return other > indent
    return False


def _dedented(snap: Snapshot, first: int, last: int) -> str:
    lead = indent_of(snap, first) or 0
    out = []
    for line in range(first, last + 1):
        text = snap.lines[line]
        strip = 0
        while strip < len(text) and text[strip] in " \t" and strip < lead:
            strip += 1
        out.append(text[strip:])
    return "".join(out)


def parse_scope(snap: Snapshot, first: int, last: int) -> tuple[str, str] | None:
    """(kind, name) of the outermost scope a standalone parse of lines ``first..last`` finds
    starting on its first line (also tried inside the language's member wrapper, e.g. a class
    body for JavaScript methods); None otherwise."""
    language = snap.language
    if language is None:
        return None
    parser = language.parser()
    query = language.query("scopes")
    if parser is None or query is None:
        return None
    text = _dedented(snap, first, last)
    attempts = [("", text, "")]
    if language.recovery_wrap is not None:
        attempts.append((language.recovery_wrap[0], text, language.recovery_wrap[1]))
    if language.recovery_stub is not None:  # the header alone, with an empty body
        header_last = first
        while header_last < last and (indent_of(snap, header_last + 1) is None
                                      or (indent_of(snap, header_last + 1) or 0) <= (indent_of(snap, first) or 0)):
            header_last += 1
        attempts.append(("", _dedented(snap, first, header_last).rstrip("\r\n") + language.recovery_stub, ""))
    for before, body, after in attempts:
        data = (before + body + after).encode("utf-8")
        tree = parser.parse(data)
        row = before.count("\n")
        best: tuple[int, str, str] | None = None
        for _, captures in tree_sitter.QueryCursor(query).matches(tree.root_node):
            found = kind_node(captures, "scope.")
            if found is None:
                continue
            kind, node = found
            if node.start_point.row != row:
                continue
            names = captures.get("name")
            if not names:
                continue
            name = data[names[0].start_byte : names[0].end_byte].decode("utf-8", errors="replace")
            size = node.end_byte - node.start_byte
            if best is None or size > best[0]:
                best = (size, kind, name)
        if best is not None:
            return best[1], best[2]
    return None


def recover(snap: Snapshot, lines: Iterable[int], known_starts: set[int],
            container: dict[int, tuple[int, bool]]) -> list[Recovered]:
    """Scopes for the candidate ``lines`` that the tree lost.

    ``known_starts``: lines on which a (bounded) tree scope starts or is named. ``container``:
    for a line, (end line, has_error) of the innermost bounded tree scope holding it (absent:
    module level); lines inside an error-free scope are never candidates.
    """
    found: list[Recovered] = []
    last_line = snap.line_count - 1
    for line in sorted(set(lines)):
        if line in known_starts or line > last_line:
            continue
        end_cap, has_error = container.get(line, (last_line, True))
        if not has_error or not opens_block(snap, line, end_cap):
            continue
        if _sibling_start(snap, line, indent_of(snap, line) or 0) is not True:
            continue
        end = bound_end(snap, line, line + 1, end_cap)
        parsed = parse_scope(snap, line, end)
        if parsed is None:
            continue
        kind, name = parsed
        start = line
        indent = indent_of(snap, line)
        for _ in range(MAX_PREFIX_LINES):  # decorators / annotations directly above
            above = start - 1
            if above < 0 or above in known_starts or indent_of(snap, above) != indent:
                break
            if _in_comment_or_string(snap, above) or parse_scope(snap, above, end) != (kind, name):
                break
            start = above
        found.append(Recovered(kind, name, start, end))
    return found


def name_line(snap: Snapshot, node: tree_sitter.Node) -> int:
    return snap.line_of_offset(snap.offset_of_byte(node.start_byte))


__all__ = [
    "MAX_PREFIX_LINES", "Recovered", "bound_end", "chain", "first_byte", "indent_of", "name_line", "opens_block",
    "parse_scope", "recover",
]
