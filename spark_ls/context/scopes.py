"""Scopes: the functions, methods and classes of a file, and the one enclosing a line range."""

from __future__ import annotations

from collections.abc import Iterable

import tree_sitter

from spark_ls.context.analysis import (
    Scope,
    ScopeNode,
    analysis_of,
    cached_analysis,
    kind_node,
    matches,
    node_text,
)
from spark_ls.context.document import Snapshot

SCOPE_KINDS = ("function", "method", "class")
_ANONYMOUS = "<anonymous>"

__all__ = ["SCOPE_KINDS", "Scope", "all_scopes", "enclosing_node", "enclosing_scope", "find_scopes", "scope_nodes"]


def find_scopes(snap: Snapshot, byte_range: tuple[int, int] | None = None) -> list[ScopeNode]:
    """Scopes of the whole file, or (with ``byte_range``) those intersecting the range — which
    include every scope enclosing it, at a cost proportional to the range, not the file."""
    raw: dict[int, tuple[str, str, tree_sitter.Node]] = {}
    receivers: dict[int, str] = {}
    for captures in matches(snap, "scopes", byte_range=byte_range):
        found = kind_node(captures, "scope.")
        if found is None:
            continue
        kind, node = found
        names = captures.get("name")
        name = node_text(snap, names[0]) if names else _ANONYMOUS
        raw.setdefault(node.id, (kind, name, node))
        if captures.get("receiver"):
            receivers[node.id] = node_text(snap, captures["receiver"][0])
    # A definition matched both bare and wrapped (decorators, export) is kept once, wrapped.
    for node_id, (kind, name, node) in list(raw.items()):
        parent = node.parent
        if parent is not None and parent.id in raw and raw[parent.id][1] == name:
            del raw[node_id]
    ordered = sorted(raw.values(), key=lambda item: (item[2].start_byte, -item[2].end_byte))
    result: list[ScopeNode] = []
    stack: list[tuple[int, str, str]] = []  # (end_byte, kind, qualname) of open ancestors
    for kind, name, node in ordered:
        while stack and stack[-1][0] <= node.start_byte:
            stack.pop()
        parent_kind = stack[-1][1] if stack else None
        if kind == "function" and parent_kind == "class":
            kind = "method"
        qualname = f"{stack[-1][2]}.{name}" if stack else name
        start, end = snap.node_span(node)
        start_line, end_line = snap.span_lines(start, end)
        result.append(ScopeNode(Scope(kind, name, start_line, end_line, start, end, qualname), node,
                                 receivers.get(node.id)))
        stack.append((node.end_byte, kind, qualname))
    return result



def scope_nodes(snap: Snapshot) -> list[ScopeNode]:
    """Every scope of the file (cached per snapshot), in document order."""
    analysis = analysis_of(snap)
    if analysis.scopes is None:
        analysis.scopes = find_scopes(snap)
    return analysis.scopes


def all_scopes(snap: Snapshot, kinds: Iterable[str] = SCOPE_KINDS) -> list[Scope]:
    """Every scope of the given kinds, in document order (outer before inner)."""
    wanted = set(kinds)
    return [item.scope for item in scope_nodes(snap) if item.scope.kind in wanted]


def enclosing_node(snap: Snapshot, start_line: int, end_line: int) -> ScopeNode | None:
    """The smallest scope holding the (ordered) line range, with its tree node."""
    best: ScopeNode | None = None
    analysed = cached_analysis(snap)
    if analysed is not None and analysed.scopes is not None:
        candidates = analysed.scopes
    elif not snap.lines:
        return None
    else:
        # Right after a keystroke nothing is cached: listing actions must not wait for a
        # whole-file analysis, so look only at the scopes around the range.
        last = max(0, snap.line_count - 1)
        starts = snap._line_starts if snap._is_ascii else snap._byte_line_starts  # bytes
        first_byte, end_byte = starts[min(start_line, last)], starts[min(end_line, last) + 1]
        candidates = find_scopes(snap, (first_byte, max(first_byte, end_byte)))
    for item in candidates:
        scope = item.scope
        if scope.kind not in SCOPE_KINDS:
            continue
        encloses = scope.start_line <= start_line and end_line <= scope.end_line
        # Later in document order and no larger means nested deeper.
        if encloses and (best is None or (scope.end - scope.start) <= (best.scope.end - best.scope.start)):
            best = item
    return best


def enclosing_scope(snap: Snapshot, start_line: int, end_line: int) -> Scope | None:
    """The smallest function/method/class holding every line of the range (for a range spanning
    several scopes, their smallest common ancestor); None at module level or without a tree."""
    start_line, end_line = min(start_line, end_line), max(start_line, end_line)
    found = enclosing_node(snap, start_line, end_line)
    return found.scope if found else None

