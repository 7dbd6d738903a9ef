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


@dataclass
class ScopeNode:
    scope: Scope
    node: tree_sitter.Node | None  # None for a scope recovered from the layout of broken code
    receiver: str | None = None  # the type a method belongs to when not nested in it (Go)


@dataclass
class Definition:
    kind: str
    name: str
    node: tree_sitter.Node
    body: tree_sitter.Node | None
    start_line: int
    end_line: int
    signature_end_line: int
    top_level: bool
    parent_scope: Scope | None


@dataclass
class Analysis:
    """What has been computed for one snapshot so far (None: not yet)."""

    scopes: list[ScopeNode] | None = None
    definitions: list[Definition] | None = None
    import_runs: list[tuple[int, int]] | None = None
    import_insert_line: int | None = None


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
