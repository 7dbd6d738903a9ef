"""Per-snapshot analysis records and the query helpers the context modules share.

A snapshot is immutable, so whatever is computed from it (scopes, definitions, imports) is cached
per snapshot, weakly: the cache entry goes when the snapshot does.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import tree_sitter

from spark_ls.context.document import Snapshot


@dataclass(frozen=True)
class Scope:
    kind: str
    name: str
    start_line: int
    end_line: int
    start: int  # str offsets
    end: int
    qualname: str = ""  # e.g. "Outer.Inner.method"


def locate(tree: tree_sitter.Tree, node_type: str, start_byte: int, end_byte: int) -> tree_sitter.Node | None:
    """The node of ``tree`` with this type and byte range (None if there is none)."""

    def wanted(node: tree_sitter.Node) -> bool:
        return node.type == node_type and node.start_byte == start_byte and node.end_byte == end_byte

    around: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(start_byte, end_byte)
    probe = around
    while probe is not None:
        if wanted(probe):
            return probe
        probe = probe.parent
    # A zero-width node (e.g. an empty body after an error) may sit at the end of a node that is
    # no ancestor of the one found for its position: search every node holding the range.
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if wanted(node):
            return node
        stack += [c for c in node.children if c.start_byte <= start_byte and end_byte <= c.end_byte]
    return None


class ScopeNode:
    """A scope with its tree node: given, found on first use (scopes reused across snapshots keep
    only the node's type and byte range), or None (a scope recovered from a broken file's layout)."""

    __slots__ = ("_node", "_where", "receiver", "scope")

    def __init__(self, scope: Scope, node: tree_sitter.Node | None = None, receiver: str | None = None, *,
                 where: tuple[tree_sitter.Tree, str, int, int] | None = None) -> None:
        self.scope = scope
        self.receiver = receiver  # the type a method belongs to when not nested in it (Go)
        self._node = node
        self._where = where

    @property
    def node(self) -> tree_sitter.Node | None:
        if self._node is None and self._where is not None:
            self._node = locate(*self._where)
            self._where = None
        return self._node

    def __repr__(self) -> str:
        return f"ScopeNode({self.scope!r}, receiver={self.receiver!r})"


class Definition:
    """A named definition (function, class, variable...) with its lines; ``node`` and ``body``
    are found in the tree on first use, like :class:`ScopeNode`'s."""

    __slots__ = ("_body", "_node", "_where", "end_line", "kind", "name", "parent_scope", "signature_end_line",
                 "start_byte", "start_line", "top_level")

    def __init__(self, kind: str, name: str, node: tree_sitter.Node | None, body: tree_sitter.Node | None,
                 start_line: int, end_line: int, signature_end_line: int, top_level: bool,
                 parent_scope: Scope | None, *, start_byte: int = -1,
                 where: tuple[tree_sitter.Tree, tuple[str, int, int], tuple[str, int, int] | None] | None = None) -> None:
        self.kind, self.name = kind, name
        self.start_line, self.end_line, self.signature_end_line = start_line, end_line, signature_end_line
        self.top_level, self.parent_scope = top_level, parent_scope
        self._node, self._body, self._where = node, body, where
        self.start_byte = node.start_byte if node is not None else start_byte

    def _resolve(self) -> None:
        if self._where is not None:
            tree, node_at, body_at = self._where
            self._node = locate(tree, *node_at)
            self._body = locate(tree, *body_at) if body_at is not None else None
            self._where = None

    @property
    def node(self) -> tree_sitter.Node:
        self._resolve()
        assert self._node is not None
        return self._node

    @property
    def body(self) -> tree_sitter.Node | None:
        self._resolve()
        return self._body

    def key(self) -> tuple[object, ...]:
        """Everything but the tree nodes (for comparisons)."""
        return (self.kind, self.name, self.start_line, self.end_line, self.signature_end_line, self.top_level,
                self.parent_scope, self.start_byte)

    def __repr__(self) -> str:
        return f"Definition{self.key()!r}"


@dataclass
class Analysis:
    """What has been computed for one snapshot so far (None: not yet)."""

    index: object | None = None  # spark_ls.context.index.FileIndex


_cache: weakref.WeakKeyDictionary[Snapshot, Analysis] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def cached_analysis(snap: Snapshot) -> Analysis | None:
    """The snapshot's analysis if any part of it was computed, without creating one."""
    with _cache_lock:
        return _cache.get(snap)


def analysis_of(snap: Snapshot) -> Analysis:
    """The snapshot's analysis record, created empty on first use. Fields are filled by the
    modules that compute them; two threads racing only repeat work."""
    with _cache_lock:
        found = _cache.get(snap)
        if found is None:
            found = _cache[snap] = Analysis()
        return found


def matches(snap: Snapshot, query_name: str, node: tree_sitter.Node | None = None,
            byte_range: tuple[int, int] | None = None) -> list[dict[str, list[tree_sitter.Node]]]:
    """The captures of every match of the language's ``query_name`` query (none without one)."""
    if snap.tree is None or snap.language is None:
        return []
    query = snap.language.query(query_name)
    if query is None:
        return []
    cursor = tree_sitter.QueryCursor(query)
    if byte_range is not None:
        cursor.set_byte_range(*byte_range)
    return [captures for _, captures in cursor.matches(node or snap.tree.root_node)]


def node_text(snap: Snapshot, node: tree_sitter.Node) -> str:
    return snap.data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def kind_node(captures: dict[str, list[tree_sitter.Node]], prefix: str) -> tuple[str, tree_sitter.Node] | None:
    """The first capture named ``<prefix><kind>``, as (kind, node)."""
    for capture, nodes in captures.items():
        if capture.startswith(prefix) and nodes:
            return capture[len(prefix) :], nodes[0]
    return None
