"""Scopes: the functions, methods and classes of a file (or of part of it), computed from scratch;
:mod:`spark_ls.context.index` caches them and finds the one enclosing a range."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import tree_sitter

from spark_ls.context import recovery
from spark_ls.context.analysis import Scope, ScopeNode, kind_node, matches, node_text
from spark_ls.context.document import Snapshot

SCOPE_KINDS = ("function", "method", "class")
_ANONYMOUS = "<anonymous>"

__all__ = ["SCOPE_KINDS", "Scope", "find_scopes", "layout_region"]


def find_scopes(snap: Snapshot, byte_range: tuple[int, int] | None = None, *,
                whole_lines: tuple[int, int] | None = None, recover: bool = True) -> list[ScopeNode]:
    """Scopes of the whole file, or (with ``byte_range``) those intersecting the range — which
    include every scope enclosing it, at a cost proportional to the range, not the file.
    ``whole_lines`` (with ``byte_range``, in a broken file): recover lost definitions starting on
    any of these lines, as the whole-file computation does, not only those enclosing the range.
    ``recover`` False: no recovered definitions at all (for error-free parts of a broken file).

    In a file with syntax errors, scopes are bounded and lost ones recovered by layout
    (:mod:`spark_ls.context.recovery`), so no scope swallows its siblings."""
    raw: dict[int, tuple[str, str, tree_sitter.Node, tree_sitter.Node | None]] = {}
    receivers: dict[int, str] = {}
    query_range = byte_range
    if byte_range is not None and whole_lines is None and snap.tree is not None and snap.tree.root_node.has_error:
        # A broken scope may reach the range by layout from a line above it: query from there.
        line = snap.line_of_offset(snap.offset_of_byte(byte_range[0]))
        links = recovery.chain(snap, line)
        if links:
            query_range = (min(byte_range[0], recovery.first_byte(snap, links[-1])), byte_range[1])
    for captures in matches(snap, "scopes", byte_range=query_range):
        found = kind_node(captures, "scope.")
        if found is None:
            continue
        kind, node = found
        names = captures.get("name")
        name = node_text(snap, names[0]) if names else _ANONYMOUS
        raw.setdefault(node.id, (kind, name, node, names[0] if names else None))
        if captures.get("receiver"):
            receivers[node.id] = node_text(snap, captures["receiver"][0])
    # A definition matched both bare and wrapped (decorators, export) is kept once, wrapped.
    for node_id, (kind, name, node, _) in list(raw.items()):
        parent = node.parent
        if parent is not None and parent.id in raw and raw[parent.id][1] == name:
            del raw[node_id]
    ordered = sorted(raw.values(), key=lambda item: (item[2].start_byte, -item[2].end_byte))
    broken = snap.tree is not None and snap.tree.root_node.has_error
    spans: list[_Span] = []
    ancestors: list[tuple[int, int]] = []  # (node end_byte, bounded end line) of tree ancestors
    for kind, name, node, name_node in ordered:
        start, end = snap.node_span(node)
        start_line, end_line = snap.span_lines(start, end)
        if broken:
            while ancestors and ancestors[-1][0] <= node.start_byte:
                ancestors.pop()
            # The innermost ancestor still holding this scope after bounding caps it.
            cap = next((bound for _, bound in reversed(ancestors) if bound >= start_line), None)
            bounded = min(end_line, cap) if cap is not None else end_line
            named = recovery.name_line(snap, name_node) if name_node is not None else start_line
            if node.has_error:  # its own extent is unreliable: the layout decides, either way
                hard = cap if cap is not None else max(0, snap.line_count - 1)
                bounded = recovery.bound_end(snap, start_line, named + 1, hard)
            elif _error_top(snap, start_line):  # sound itself, inside broken code: only shorter
                bounded = recovery.bound_end(snap, start_line, named + 1, bounded)
            if bounded != end_line:
                end_line = bounded
                end = snap.offset_of_line(end_line) + len(snap.lines[end_line].rstrip("\r\n"))
            ancestors.append((node.end_byte, end_line))
        spans.append(_Span(kind, name, start_line, end_line, start, end, node, receivers.get(node.id),
                           node.has_error, recovery.name_line(snap, name_node) if name_node is not None else start_line))
    if broken and recover:
        spans += _recovered(snap, spans, byte_range, whole_lines)
    spans.sort(key=lambda item: (item.start, -item.end))
    result: list[ScopeNode] = []
    stack: list[tuple[int, str, str]] = []  # (end offset, kind, qualname) of open ancestors
    for item in spans:
        while stack and stack[-1][0] <= item.start:
            stack.pop()
        kind = item.kind
        parent_kind = stack[-1][1] if stack else None
        if kind == "function" and parent_kind == "class":
            kind = "method"
        qualname = f"{stack[-1][2]}.{item.name}" if stack else item.name
        scope = Scope(kind, item.name, item.start_line, item.end_line, item.start, item.end, qualname)
        result.append(ScopeNode(scope, item.node, item.receiver))
        stack.append((item.end, kind, qualname))
    return result


@dataclass
class _Span:
    kind: str
    name: str
    start_line: int
    end_line: int
    start: int
    end: int
    node: tree_sitter.Node | None
    receiver: str | None
    has_error: bool
    name_line: int


def _error_tops(snap: Snapshot) -> tuple[list[int], list[int]] | None:
    """Start and end bytes of the top-level nodes with a syntax error, in order (cached on the
    snapshot); None when the whole tree is an error."""
    cached: tuple[tuple[list[int], list[int]] | None] | None = snap.__dict__.get("_error_tops")
    if cached is not None:
        return cached[0]
    assert snap.tree is not None
    root = snap.tree.root_node
    found: tuple[list[int], list[int]] | None = None
    if not root.is_error:
        broken = [c for c in root.children if c.has_error]
        found = ([c.start_byte for c in broken], [c.end_byte for c in broken])
    snap.__dict__["_error_tops"] = (found,)
    return found


def _error_top(snap: Snapshot, line: int) -> bool:
    """The line starts in a top-level node with a syntax error (or the whole tree is an error)."""
    tops = _error_tops(snap)
    if tops is None:
        return True
    starts, ends = tops
    byte = recovery.first_byte(snap, line)
    at = bisect.bisect_right(starts, byte) - 1
    return at >= 0 and byte < ends[at]


def _error_top_lines(snap: Snapshot, first: int, last: int) -> list[int]:
    """The lines in ``first..last`` that start in a top-level node with a syntax error."""
    tops = _error_tops(snap)
    if tops is None:
        return list(range(first, last + 1))
    lines: set[int] = set()
    for start, end in zip(*tops, strict=True):
        a = snap.line_of_offset(snap.offset_of_byte(start))
        b = snap.line_of_offset(snap.offset_of_byte(max(start, end - 1)))
        lines.update(line for line in range(max(a, first), min(b, last) + 1) if _error_top(snap, line))
    return sorted(lines)


def layout_region(snap: Snapshot, start_line: int, end_line: int, within: Scope | None = None) -> tuple[int, int] | None:
    """The block the layout puts a range in, for broken code where the tree offers no scope that
    holds the range without also holding its neighbours: from the outermost less-indented line
    above the range to before its next sibling.

    ``within`` None: the range is outside every scope; the answer is None where the tree has no
    error there. ``within`` a scope: the range lies in a syntax error directly inside it (not in
    one of its nested scopes, e.g. a method whose header lost its ``:``); the block stays inside
    the scope, below its first line, and the answer is None when the range is not in an error or
    there is no such block."""
    if snap.tree is None or not snap.tree.root_node.has_error or not snap.lines:
        return None
    last = snap.line_count - 1
    line = min(start_line, last)
    while line > 0 and recovery.indent_of(snap, line) is None:
        line -= 1
    links = recovery.chain(snap, line)
    if within is None:
        if not _error_top(snap, line):
            return None
    else:
        if not _in_error(snap, line):
            return None
        links = [link for link in links if within.start_line < link <= within.end_line]
        if not links:
            return None
        last = within.end_line
    # The innermost block holding the range (its own line when it opens none).
    header, end = line, line
    for link in links:
        if recovery.opens_block(snap, link, last):
            bound = recovery.bound_end(snap, link, link + 1, last)
            if bound >= line:
                header, end = link, bound
                break
    return min(header, start_line), min(last, max(end, min(end_line, last)))


def _in_error(snap: Snapshot, line: int) -> bool:
    """The line starts inside an ERROR node."""
    assert snap.tree is not None
    byte = recovery.first_byte(snap, line)
    node: tree_sitter.Node | None = snap.tree.root_node.descendant_for_byte_range(byte, byte + 1)
    while node is not None:
        if node.is_error:
            return True
        node = node.parent
    return False


def _recovered(snap: Snapshot, spans: list[_Span], byte_range: tuple[int, int] | None,
               whole_lines: tuple[int, int] | None = None) -> list[_Span]:
    last = snap.line_count - 1
    if last < 0:
        return []
    if byte_range is None or whole_lines is not None:
        first_line, last_line = whole_lines if whole_lines is not None else (0, last)
        candidates: list[int] = _error_top_lines(snap, first_line, min(last_line, last))
    else:  # only lines that can open a block holding the range: the indentation chain above it
        line = min(snap.line_of_offset(snap.offset_of_byte(byte_range[0])), last)
        candidates = recovery.chain(snap, line)
        # A definition recovered below may reach up over decorators to the range.
        candidates += range(line + 1, min(last, line + recovery.MAX_PREFIX_LINES) + 1)
        candidates = [c for c in candidates if _error_top(snap, c)]
    candidates = [c for c in candidates if recovery.opens_block(snap, c, last)]
    if not candidates:
        return []
    known = {span.start_line for span in spans} | {span.name_line for span in spans}
    container: dict[int, tuple[int, bool]] = {}
    ordered = sorted(spans, key=lambda span: (span.start_line, -span.end_line))
    for line in candidates:
        for span in ordered:  # the innermost (latest-starting) span holding the line wins
            if span.start_line > line:
                break
            if span.end_line >= line:
                container[line] = (span.end_line, span.has_error)
    out: list[_Span] = []
    for found in recovery.recover(snap, candidates, known, container):
        start = snap.offset_of_line(found.start_line)
        start += len(snap.lines[found.start_line]) - len(snap.lines[found.start_line].lstrip(" \t"))
        end = snap.offset_of_line(found.end_line) + len(snap.lines[found.end_line].rstrip("\r\n"))
        out.append(_Span(found.kind, found.name, found.start_line, found.end_line, start, end, None, None,
                         True, found.start_line))
    return out
