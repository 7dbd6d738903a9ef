"""Imports, definitions and references: what a file defines, where its imports live, and the
names a line range uses. Computed from scratch here; :mod:`spark_ls.context.index` caches them
and reuses them across snapshots."""

from __future__ import annotations

import tree_sitter

from spark_ls.context.analysis import (
    Definition,
    Scope,
    ScopeNode,
    kind_node,
    matches,
    node_text,
)
from spark_ls.context.document import Snapshot

__all__ = ["find_definitions", "find_import_info", "find_imports", "header_end_line", "referenced_names"]


def header_end_line(snap: Snapshot, node: tree_sitter.Node, body: tree_sitter.Node | None) -> int:
    """Last line of a definition's signature: the line before its body, or the body's first line
    when the body starts after other code on it (``int f() {``)."""
    start_line, end_line = snap.node_lines(node)
    if body is None:
        return start_line
    body_start = snap.offset_of_byte(body.start_byte)
    body_line = snap.line_of_offset(body_start)
    before = snap.text[snap.offset_of_line(body_line) : body_start]
    if before.strip() and body_line >= start_line:
        return min(body_line, end_line)
    return max(start_line, min(body_line - 1, end_line))


def find_definitions(snap: Snapshot, scopes: list[ScopeNode],
                     byte_range: tuple[int, int] | None = None) -> list[Definition]:
    """The definitions of the whole file (or of the top-level nodes in ``byte_range``), in order,
    with ``scopes`` those of the same part of the file (for each definition's parent scope)."""
    found_by_key: dict[tuple[int, str], tuple[str, str, tree_sitter.Node, tree_sitter.Node | None]] = {}
    for captures in matches(snap, "definitions", byte_range=byte_range):
        found = kind_node(captures, "definition.")
        if found is None:
            continue
        kind, node = found
        if byte_range is not None and not (byte_range[0] <= node.start_byte and node.end_byte <= byte_range[1]):
            continue
        body = captures.get("body", [None])[0]
        for name_node in captures.get("name", []):  # several for `a, b = ...`
            name = node_text(snap, name_node)
            earlier = found_by_key.get((node.id, name))
            if earlier is None or (earlier[3] is None and body is not None):  # prefer the match with a body
                found_by_key[(node.id, name)] = (kind, name, node, body)
    raw = list(found_by_key.values())
    ids: dict[int, set[str]] = {}
    for _, name, node, _ in raw:
        ids.setdefault(node.id, set()).add(name)
    scope_by_node: dict[int, Scope] = {}
    for item in scopes:
        scope_node = item.node
        if scope_node is not None:
            scope_by_node[scope_node.id] = item.scope
    definitions: list[Definition] = []
    for kind, name, node, body in raw:
        parent = node.parent
        if parent is not None and name in ids.get(parent.id, ()):
            continue  # the bare half of a wrapped definition
        start_line, end_line = snap.node_lines(node)
        # The innermost scope around the definition: walk up the tree (cheap, a few levels).
        parent_scope = None
        while parent is not None and parent_scope is None:
            parent_scope = scope_by_node.get(parent.id)
            parent = parent.parent
        if kind == "function" and parent_scope is not None and parent_scope.kind == "class":
            kind = "method"
        definitions.append(Definition(
            kind, name, node, body, start_line, end_line, header_end_line(snap, node, body),
            top_level=parent_scope is None, parent_scope=parent_scope,
        ))
    definitions.sort(key=lambda d: (d.start_byte, d.name))
    return definitions


def find_imports(snap: Snapshot, byte_range: tuple[int, int] | None = None
                 ) -> tuple[dict[int, tree_sitter.Node], set[int]]:
    """Import nodes (by node id) and the ids of import anchors, in the file or ``byte_range``."""
    imports: dict[int, tree_sitter.Node] = {}
    anchors: set[int] = set()
    for captures in matches(snap, "imports", byte_range=byte_range):
        for node in captures.get("import", []):
            imports[node.id] = node
        for node in captures.get("import.anchor", []):
            anchors.add(node.id)
    return imports, anchors


def find_import_info(snap: Snapshot) -> tuple[list[tuple[int, int]], int]:
    """Runs of consecutive top-level imports (inclusive line ranges) and the insertion line to
    use when there are none, computed on the whole file."""
    imports, anchors = find_imports(snap)
    runs: list[tuple[int, int]] = []
    insert_line = 0
    if snap.tree is not None:
        root = snap.tree.root_node
        leading = True
        current: tuple[int, int] | None = None
        for child in root.children:
            if child.is_extra:  # comments between imports do not break a run
                if leading:
                    insert_line = snap.node_lines(child)[1] + 1
                continue
            if child.id in imports:
                lines = snap.node_lines(child)
                current = (current[0], lines[1]) if current else lines
                leading = False
                continue
            if leading and child.id in anchors:
                insert_line = snap.node_lines(child)[1] + 1
                continue
            if not child.is_named and leading:
                continue
            leading = False
            if current:
                runs.append(current)
                current = None
        if current:
            runs.append(current)
        # Nested imports (e.g. inside C header guards) are still imports: group them too.
        if not runs and imports:
            ordered = sorted(imports.values(), key=lambda n: n.start_byte)
            for node in ordered:
                lines = snap.node_lines(node)
                if runs and lines[0] <= runs[-1][1] + 1:
                    runs[-1] = (runs[-1][0], lines[1])
                else:
                    runs.append(lines)
    insert_line = min(insert_line, snap.line_count)
    return runs, insert_line


def referenced_names(snap: Snapshot, start_line: int, end_line: int) -> list[str]:
    """Names the lines use, in first-use order."""
    if snap.tree is None:
        return []
    start_byte = len(snap.text[: snap.offset_of_line(start_line)].encode("utf-8"))
    end_byte = len(snap.text[: snap.offset_of_line(end_line + 1)].encode("utf-8"))
    seen: dict[str, None] = {}
    nodes: list[tree_sitter.Node] = []
    for captures in matches(snap, "references", byte_range=(start_byte, end_byte)):
        nodes += [n for n in captures.get("reference", []) if start_byte <= n.start_byte and n.end_byte <= end_byte]
    for node in sorted(nodes, key=lambda n: n.start_byte):
        seen.setdefault(node_text(snap, node), None)
    return list(seen)

