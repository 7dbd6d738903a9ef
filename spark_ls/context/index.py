"""The per-snapshot index of scopes, definitions and imports, kept incremental across edits.

Whole-file tree-sitter queries cost tens of milliseconds on a 5,000-line file, and every keystroke
makes a new snapshot. But a top-level node whose text did not change has the same scopes,
definitions and imports, only shifted. So the index is built per top-level node ("chunk"): facts
in coordinates relative to the chunk, cached by the chunk's type, size and exact bytes (shared by
all documents of a language, least recently used evicted), and placed at the chunk's position in
each snapshot. After a keystroke only the touched chunk is queried; the others cost a dictionary
lookup. Scopes and definitions become objects (``Scope``, ``Definition``) only when asked for,
and their tree nodes are found only when used.

Files with syntax errors are indexed as a whole, from scratch (scope bounding and recovery look
across top-level nodes there; see :mod:`spark_ls.context.recovery`). The result equals the
from-scratch computation in every case (``tests/test_context_index.py`` checks it on random edits).
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import tree_sitter

from spark_ls.context.analysis import (
    Definition,
    Scope,
    ScopeNode,
    analysis_of,
    cached_analysis,
)
from spark_ls.context.document import Snapshot
from spark_ls.context.recovery import first_byte as recovery_first_byte
from spark_ls.context.scopes import SCOPE_KINDS, find_scopes
from spark_ls.context.symbols import find_definitions, find_import_info, find_imports

__all__ = [
    "CHUNK_CACHE_SIZE", "FileIndex", "all_scopes", "defined_names", "definition_of_scope", "definitions_named",
    "definitions_of", "enclosing_node", "enclosing_scope", "file_index", "import_info", "scope_nodes",
    "scopes_near", "warm", "warm_if_incremental",
]

CHUNK_CACHE_SIZE = 8192  # chunks kept across snapshots and documents


@dataclass(frozen=True, slots=True)
class _RelScope:  # lines, str offsets and bytes relative to the chunk's start
    kind: str
    name: str
    start_line: int
    end_line: int
    start: int
    end: int
    qualname: str
    receiver: str | None
    node_type: str  # "" for a scope recovered from layout (no node)
    start_byte: int
    end_byte: int


@dataclass(frozen=True, slots=True)
class _RelDefinition:
    kind: str
    name: str
    start_line: int
    end_line: int
    signature_end_line: int
    parent: int  # index of the parent scope in the chunk's scopes, -1: top level
    node_type: str
    start_byte: int
    end_byte: int
    body: tuple[str, int, int] | None  # (type, start_byte, end_byte)


@dataclass(frozen=True, slots=True)
class _Facts:
    scopes: tuple[_RelScope, ...]
    definitions: tuple[_RelDefinition, ...]
    end_line: int  # the chunk's last line, relative
    is_extra: bool = False
    is_named: bool = True
    is_import: bool = False
    is_anchor: bool = False
    imports: tuple[tuple[int, int], ...] = ()  # relative lines of every import node inside, in order
    broken: bool = False  # has a syntax error: depends on the text around it, never cached or reused


class _Placed:
    """A chunk at its place in one snapshot."""

    __slots__ = ("byte", "facts", "last_line", "line", "offset")

    def __init__(self, facts: _Facts, line: int, offset: int, byte: int) -> None:
        self.facts, self.line, self.offset, self.byte = facts, line, offset, byte
        self.last_line = line + facts.end_line


class FileIndex:
    """One snapshot's chunks, with the objects made from them so far."""

    def __init__(self, snap: Snapshot, chunks: list[_Placed], import_info: tuple[list[tuple[int, int]], int] | None):
        self._tree = snap.tree
        self._line_count = snap.line_count
        self.chunks = chunks
        self._starts = [chunk.line for chunk in chunks]
        self._import_info = import_info  # precomputed for a file indexed as a whole
        self._scopes: dict[int, list[ScopeNode]] = {}
        self._names: dict[str, list[tuple[int, int]]] | None = None
        # From the snapshot this one was edited from: (its names, first changed chunk, its chunks
        # from there that were replaced, the number of new ones), to update names() cheaply.
        self.names_base: tuple[dict[str, list[tuple[int, int]]], int, list[_Facts], int] | None = None
        self._lock = threading.Lock()
        self.whole = False  # indexed as one piece (a file with syntax errors): nothing to reuse
        self.broken = any(chunk.facts.broken for chunk in chunks)  # chunks that depend on their neighbours

    # -- scopes

    def chunk_scopes(self, index: int) -> list[ScopeNode]:
        with self._lock:
            found = self._scopes.get(index)
        if found is None:
            chunk = self.chunks[index]
            found = [self._scope_node(chunk, rel) for rel in chunk.facts.scopes]
            with self._lock:
                found = self._scopes.setdefault(index, found)
        return found

    def _scope(self, chunk: _Placed, rel: _RelScope) -> Scope:
        return Scope(rel.kind, rel.name, rel.start_line + chunk.line, rel.end_line + chunk.line,
                     rel.start + chunk.offset, rel.end + chunk.offset, rel.qualname)

    def _scope_node(self, chunk: _Placed, rel: _RelScope) -> ScopeNode:
        where = None
        if rel.node_type and self._tree is not None:
            where = (self._tree, rel.node_type, rel.start_byte + chunk.byte, rel.end_byte + chunk.byte)
        return ScopeNode(self._scope(chunk, rel), None, rel.receiver, where=where)

    def all_scope_nodes(self) -> list[ScopeNode]:
        out: list[ScopeNode] = []
        for index in range(len(self.chunks)):
            out += self.chunk_scopes(index)
        return out

    def chunks_over(self, start_line: int, end_line: int) -> range:
        """Indexes of the chunks whose lines meet ``start_line..end_line``."""
        first = max(0, bisect.bisect_right(self._starts, start_line) - 1)
        while first > 0 and self.chunks[first - 1].last_line >= start_line:
            first -= 1  # chunks sharing a line
        last = first
        while last < len(self.chunks) and self.chunks[last].line <= end_line:
            last += 1
        return range(first, last)

    def scopes_over(self, start_line: int, end_line: int) -> list[ScopeNode]:
        out: list[ScopeNode] = []
        for index in self.chunks_over(start_line, end_line):
            if self.chunks[index].last_line >= start_line:
                out += self.chunk_scopes(index)
        return out

    # -- definitions

    def _definition(self, chunk_index: int, rel: _RelDefinition) -> Definition:
        chunk = self.chunks[chunk_index]
        parent = self._scope(chunk, chunk.facts.scopes[rel.parent]) if rel.parent >= 0 else None
        body = None if rel.body is None else (rel.body[0], rel.body[1] + chunk.byte, rel.body[2] + chunk.byte)
        where = None
        if self._tree is not None:
            where = (self._tree, (rel.node_type, rel.start_byte + chunk.byte, rel.end_byte + chunk.byte), body)
        return Definition(rel.kind, rel.name, None, None, rel.start_line + chunk.line, rel.end_line + chunk.line,
                          rel.signature_end_line + chunk.line, top_level=parent is None, parent_scope=parent,
                          start_byte=rel.start_byte + chunk.byte, where=where)

    def names(self) -> dict[str, list[tuple[int, int]]]:
        """Defined name -> (chunk index, definition index), in document order (shared: do not mutate)."""
        if self._names is None:
            base, self.names_base = self.names_base, None
            names = self._names_from(base) if base is not None else None
            if names is None:
                names = {}
                for chunk_index, chunk in enumerate(self.chunks):
                    for index, rel in enumerate(chunk.facts.definitions):
                        names.setdefault(rel.name, []).append((chunk_index, index))
            self._names = names
        return self._names

    def _names_from(self, base: tuple[dict[str, list[tuple[int, int]]], int, list[_Facts], int]
                    ) -> dict[str, list[tuple[int, int]]] | None:
        """The previous snapshot's names with only the replaced chunks' entries redone (None when
        the chunks after them moved to other positions: then every entry would change)."""
        old_names, first, replaced, count = base
        if len(replaced) != count:
            return None
        stop = first + count
        affected = {rel.name for facts in replaced for rel in facts.definitions}
        affected.update(rel.name for chunk in self.chunks[first:stop] for rel in chunk.facts.definitions)
        names = dict(old_names)  # the lists of the other names are shared, never mutated
        for name in affected:
            kept = [at for at in old_names.get(name, ()) if not first <= at[0] < stop]
            kept += [(c, i) for c in range(first, stop) for i, rel in enumerate(self.chunks[c].facts.definitions)
                     if rel.name == name]
            if kept:
                names[name] = sorted(kept)
            else:
                names.pop(name, None)
        return names

    def definitions_named(self, wanted: Iterable[str]) -> list[Definition]:
        names = self.names()
        at = sorted(position for name in set(wanted) for position in names.get(name, ()))
        return [self._definition(c, self.chunks[c].facts.definitions[i]) for c, i in at]

    def all_definitions(self) -> list[Definition]:
        return [self._definition(c, rel) for c, chunk in enumerate(self.chunks) for rel in chunk.facts.definitions]

    def definition_at(self, line: int, node_type: str, start_byte: int) -> Definition | None:
        for c in self.chunks_over(line, line):
            chunk = self.chunks[c]
            for rel in chunk.facts.definitions:
                if rel.node_type == node_type and rel.start_byte + chunk.byte == start_byte:
                    return self._definition(c, rel)
        return None

    # -- imports

    def import_info(self) -> tuple[list[tuple[int, int]], int]:
        if self._import_info is not None:
            return self._import_info
        runs: list[tuple[int, int]] = []
        insert_line = 0
        leading = True
        current: tuple[int, int] | None = None
        for chunk in self.chunks:
            facts = chunk.facts
            if facts.is_extra:  # comments between imports do not break a run
                if leading:
                    insert_line = chunk.last_line + 1
                continue
            if facts.is_import:
                current = (current[0], chunk.last_line) if current else (chunk.line, chunk.last_line)
                leading = False
                continue
            if leading and facts.is_anchor:
                insert_line = chunk.last_line + 1
                continue
            if not facts.is_named and leading:
                continue
            leading = False
            if current:
                runs.append(current)
                current = None
        if current:
            runs.append(current)
        if not runs:  # nested imports (e.g. inside C header guards) are still imports: group them too
            for chunk in self.chunks:
                for first, last in chunk.facts.imports:
                    lines = (first + chunk.line, last + chunk.line)
                    if runs and lines[0] <= runs[-1][1] + 1:
                        runs[-1] = (runs[-1][0], lines[1])
                    else:
                        runs.append(lines)
        self._import_info = (runs, min(insert_line, self._line_count))
        return self._import_info


# ---------------------------------------------------------------------------------------------
# Building the index


_chunk_cache: OrderedDict[tuple[object, str, int, bytes], _Facts] = OrderedDict()
_chunk_lock = threading.Lock()


def _remember(key: tuple[object, str, int, bytes], facts: _Facts) -> None:
    with _chunk_lock:
        _chunk_cache[key] = facts
        _chunk_cache.move_to_end(key)
        while len(_chunk_cache) > CHUNK_CACHE_SIZE:
            _chunk_cache.popitem(last=False)


def clear_chunk_cache() -> None:
    with _chunk_lock:
        _chunk_cache.clear()


def file_index(snap: Snapshot) -> FileIndex | None:
    """The snapshot's index (built on first use; None without a tree)."""
    if snap.tree is None:
        return None
    analysis = analysis_of(snap)
    found = analysis.index
    if isinstance(found, FileIndex):
        return found
    built = _build(snap, snap.tree)
    analysis.index = built
    snap.__dict__.pop("derived_from", None)  # the previous snapshot is no longer needed
    return built


def _build(snap: Snapshot, tree: tree_sitter.Tree) -> FileIndex:
    root = tree.root_node
    if not root.is_error:
        reused = _reuse(snap, root)
        placed, names_base = reused if reused is not None else (None, None)
        if placed is None and root.has_error:
            placed = _place_broken(snap, root)
        elif placed is None:
            placed = _place(snap, root.children)
        if placed is not None:
            index = FileIndex(snap, placed, None)
            index.names_base = names_base
            return index
    if root.has_error:  # bounding and recovery reach across top-level nodes: the whole file at once
        scopes = find_scopes(snap)
        whole = _facts_of(snap, 0, 0, scopes, find_definitions(snap, scopes), max(0, snap.line_count - 1))
        index = FileIndex(snap, [_Placed(whole, 0, 0, 0)], find_import_info(snap))
        index.whole = True
        return index
    return FileIndex(snap, _place(snap, root.children), None)


def _reuse(snap: Snapshot, root: tree_sitter.Node
           ) -> tuple[list[_Placed], tuple[dict[str, list[tuple[int, int]]], int, list[_Facts], int] | None] | None:
    """The chunks of the snapshot this one was edited from, kept before and shifted after the
    changed bytes; only the top-level nodes in between are looked up (None: nothing to reuse).
    With them, what :meth:`FileIndex.names` needs to update the old index's names, if it has them."""
    derived = snap.__dict__.get("derived_from")  # set by SourceDocument.snapshot()
    if derived is None:
        return None
    base, edited, start, old_end, new_end = derived
    assert snap.tree is not None
    lo, hi, delta = start, new_end, new_end - old_end  # the edit, widened to where the syntax changed
    for changed in edited.changed_ranges(snap.tree):
        lo, hi = min(lo, changed.start_byte), max(hi, changed.end_byte)
    analysed = cached_analysis(base)
    old = analysed.index if analysed is not None else None
    if not isinstance(old, FileIndex) or old.whole:
        return None
    count = root.child_count
    # First top-level node that may have changed (ends at or after lo), first one after hi.
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if _child(root, middle).end_byte < lo:
            low = middle + 1
        else:
            high = middle
    first = low
    low, high = first, count
    while low < high:
        middle = (low + high) // 2
        if _child(root, middle).start_byte <= hi:
            low = middle + 1
        else:
            high = middle
    after = low
    old_chunks = old.chunks
    tail = count - after
    if first + tail > len(old_chunks):
        return None
    if first and old_chunks[first - 1].byte != _child(root, first - 1).start_byte:
        return None
    # A node with an error depends on the text around it: reuse none, compute the new ones alone.
    if any(chunk.facts.broken for chunk in old_chunks[:first]) or \
            any(chunk.facts.broken for chunk in old_chunks[len(old_chunks) - tail :]):
        return None
    # By index: next_sibling skips zero-width (MISSING) nodes, which are top-level nodes too.
    middle_children = [_child(root, at) for at in range(first, after)]
    # Nodes with an error are computed with the neighbours they share lines with, which must be
    # among the recomputed ones: look one node beyond each end.
    around = list(middle_children)
    lead = 0
    if middle_children:
        if first > 0:
            around.insert(0, _child(root, first - 1))
            lead = 1
        if after < count:
            around.append(_child(root, after))
    found = _compute_broken_nodes(snap, around, range(lead, lead + len(middle_children)))
    if found is None:
        return None
    known = {at - lead: facts for at, facts in found.items()}
    placed = old_chunks[:first] + _place(snap, middle_children, known)
    old_names = old._names
    names_base = None if old_names is None else \
        (old_names, first, [c.facts for c in old_chunks[first : len(old_chunks) - tail]], len(middle_children))
    if tail:
        next_node = _child(root, after)
        old_next = old_chunks[len(old_chunks) - tail]
        if old_next.byte + delta != next_node.start_byte:
            return None
        offset = next_node.start_byte if snap._is_ascii else snap.offset_of_byte(next_node.start_byte)
        line_shift = snap.line_of_offset(offset) - old_next.line
        offset_shift = offset - old_next.offset
        placed += [_Placed(c.facts, c.line + line_shift, c.offset + offset_shift, c.byte + delta)
                   for c in old_chunks[len(old_chunks) - tail :]]
    return placed, names_base


def _place_broken(snap: Snapshot, root: tree_sitter.Node) -> list[_Placed] | None:
    """A tree with syntax errors: error-free top-level nodes as usual, each one with an error
    (with the neighbours it shares a line with) on its own, not cached. None when one of their
    scopes reaches past its node: the whole-file computation then decides."""
    children = root.children
    known = _compute_broken_nodes(snap, children, range(len(children)))
    return _place(snap, children, known) if known is not None else None


def _compute_broken_nodes(snap: Snapshot, children: list[tree_sitter.Node], allowed: range
                          ) -> dict[int, _Facts] | None:
    """Facts for the nodes with an error among ``children`` (and their line-sharing neighbours),
    by index; None when that needs a node outside ``allowed`` or a scope reaches past its node."""
    lines = [snap.node_lines(child) for child in children]
    known: dict[int, _Facts] = {}
    for at, child in enumerate(children):
        if not child.has_error or at in known:
            continue
        first, last = at, at
        while first > 0 and lines[first - 1][1] >= lines[first][0]:
            first -= 1
        while last + 1 < len(children) and lines[last + 1][0] <= lines[last][1]:
            last += 1
        if first < allowed.start or last >= allowed.stop:
            return None
        facts = _compute(snap, children[first : last + 1], (lines[first][0], lines[last][1]), lines[first : last + 1])
        if facts is None:
            return None
        for offset, computed in enumerate(facts):
            known[first + offset] = computed
    return known


def _child(root: tree_sitter.Node, index: int) -> tree_sitter.Node:
    child = root.child(index)
    assert child is not None
    return child


def _place(snap: Snapshot, children: list[tree_sitter.Node], known: dict[int, _Facts] | None = None) -> list[_Placed]:
    """Facts for these top-level nodes (``known`` by position, cached by content, else queried),
    at their places."""
    language = snap.language  # the spec itself (by identity): reloaded grammars get fresh entries
    data = snap.data
    keys = [(language, child.type, child.descendant_count, data[child.start_byte : child.end_byte])
            for child in children]
    with _chunk_lock:
        cached = _chunk_cache.get
        facts: list[_Facts | None] = [cached(key) for key in keys]
    for at, given in (known or {}).items():
        facts[at] = given
    # Query each run of unknown chunks at once (the first time: the whole file in one go).
    index = 0
    while index < len(children):
        if facts[index] is not None:
            index += 1
            continue
        end = index
        while end + 1 < len(children) and facts[end + 1] is None:
            end += 1
        for offset, computed in enumerate(_compute_run(snap, children[index : end + 1])):
            facts[index + offset] = computed
            _remember(keys[index + offset], computed)
        index = end + 1
    with _chunk_lock:  # recently used: evicted last
        for key in keys:
            if key in _chunk_cache:
                _chunk_cache.move_to_end(key)
    placed = []
    # Without "\r" in the text, tree-sitter's rows are the line numbers; ASCII: bytes are offsets.
    rows_are_lines = "\r" not in snap.text
    ascii_text = snap._is_ascii
    for child, chunk_facts in zip(children, facts, strict=True):
        assert chunk_facts is not None
        byte = child.start_byte
        offset = byte if ascii_text else snap.offset_of_byte(byte)
        line = child.start_point.row if rows_are_lines else snap.line_of_offset(offset)
        placed.append(_Placed(chunk_facts, line, offset, byte))
    return placed


def _compute_run(snap: Snapshot, children: list[tree_sitter.Node]) -> list[_Facts]:
    """Facts for consecutive error-free top-level nodes, from one query per kind."""
    computed = _compute(snap, children, None)
    assert computed is not None  # only a broken node can reach past itself
    return computed


def _compute(snap: Snapshot, children: list[tree_sitter.Node], broken: tuple[int, int] | None,
             child_lines: list[tuple[int, int]] | None = None) -> list[_Facts] | None:
    """Facts for consecutive top-level nodes. ``broken``: the nodes (one with a syntax error and
    the neighbours it shares lines with, on ``child_lines``) span these lines; scopes are bounded
    and recovered as the whole-file computation does, and None is returned when one reaches past
    its node (then only the whole file gives the same answer)."""
    byte_range = (children[0].start_byte, children[-1].end_byte)
    starts = [child.start_byte for child in children]

    def owner(node: tree_sitter.Node) -> int | None:
        at = bisect.bisect_right(starts, node.start_byte) - 1
        if at < 0 or node.end_byte > children[at].end_byte:
            return None
        return at

    scopes_by: list[list[ScopeNode]] = [[] for _ in children]
    if broken is None:
        found = find_scopes(snap, byte_range, recover=False)
    else:
        found = find_scopes(snap, byte_range, whole_lines=broken)
    for item in found:
        node = item.node
        if broken is not None:
            assert child_lines is not None
            if node is not None:
                at = owner(node)
                if at is None:
                    continue  # a node outside these
            else:  # recovered: belongs to the node its first line starts in
                at = max(0, bisect.bisect_right(starts, recovery_first_byte(snap, item.scope.start_line)) - 1)
            if not (child_lines[at][0] <= item.scope.start_line and item.scope.end_line <= child_lines[at][1]):
                return None  # reaches past its node: not a local answer
        else:
            at = owner(node) if node is not None else None
        if at is not None:
            scopes_by[at].append(item)
    all_in_run = [item for group in scopes_by for item in group]
    definitions_by: list[list[Definition]] = [[] for _ in children]
    for definition in find_definitions(snap, all_in_run, byte_range):
        at = owner(definition.node)
        if at is not None:
            definitions_by[at].append(definition)
    imports, anchors = find_imports(snap, byte_range)
    imports_by: list[list[tree_sitter.Node]] = [[] for _ in children]
    for node in imports.values():
        at = owner(node)
        if at is not None:
            imports_by[at].append(node)
    out = []
    for at, child in enumerate(children):
        offset = snap.offset_of_byte(child.start_byte)
        line = snap.line_of_offset(offset)
        inside = sorted(imports_by[at], key=lambda n: n.start_byte)
        base = _facts_of(snap, line, offset, scopes_by[at], definitions_by[at], snap.node_lines(child)[1],
                         byte=child.start_byte)
        out.append(_Facts(
            base.scopes, base.definitions, base.end_line, is_extra=child.is_extra, is_named=child.is_named,
            is_import=child.id in imports, is_anchor=child.id in anchors,
            imports=tuple((a - line, b - line) for a, b in (snap.node_lines(n) for n in inside)),
            broken=broken is not None,
        ))
    return out


def _facts_of(snap: Snapshot, line: int, offset: int, scopes: list[ScopeNode], definitions: list[Definition],
              last_line: int, byte: int = 0) -> _Facts:
    rel_scopes: list[_RelScope] = []
    position: dict[Scope, int] = {}
    for item in scopes:
        scope, node = item.scope, item.node
        position.setdefault(scope, len(rel_scopes))
        rel_scopes.append(_RelScope(
            scope.kind, scope.name, scope.start_line - line, scope.end_line - line, scope.start - offset,
            scope.end - offset, scope.qualname, item.receiver, node.type if node is not None else "",
            (node.start_byte - byte) if node is not None else 0, (node.end_byte - byte) if node is not None else 0,
        ))
    rel_definitions = []
    for definition in definitions:
        node, body = definition.node, definition.body
        parent = position.get(definition.parent_scope, -1) if definition.parent_scope is not None else -1
        rel_definitions.append(_RelDefinition(
            definition.kind, definition.name, definition.start_line - line, definition.end_line - line,
            definition.signature_end_line - line, parent, node.type, node.start_byte - byte, node.end_byte - byte,
            None if body is None else (body.type, body.start_byte - byte, body.end_byte - byte),
        ))
    return _Facts(tuple(rel_scopes), tuple(rel_definitions), last_line - line)


# ---------------------------------------------------------------------------------------------
# Views


def scope_nodes(snap: Snapshot) -> list[ScopeNode]:
    """Every scope of the file, in document order."""
    index = file_index(snap)
    return index.all_scope_nodes() if index is not None else []


def all_scopes(snap: Snapshot, kinds: Iterable[str] = SCOPE_KINDS) -> list[Scope]:
    """Every scope of the given kinds, in document order (outer before inner)."""
    wanted = set(kinds)
    return [item.scope for item in scope_nodes(snap) if item.scope.kind in wanted]


def scopes_near(snap: Snapshot, start_line: int, end_line: int) -> list[ScopeNode]:
    """The scopes of the top-level nodes meeting the lines (all that can hold or touch them)."""
    index = file_index(snap)
    return index.scopes_over(start_line, end_line) if index is not None else []


def enclosing_node(snap: Snapshot, start_line: int, end_line: int) -> ScopeNode | None:
    """The smallest scope holding the (ordered) line range, with its tree node."""
    if snap.tree is None or not snap.lines:
        return None
    analysed = cached_analysis(snap)
    if analysed is not None and isinstance(analysed.index, FileIndex):
        candidates = analysed.index.scopes_over(start_line, end_line)
    else:
        # Right after a keystroke nothing is cached: listing actions must not wait for a
        # whole-file analysis, so look only at the scopes around the range.
        last = max(0, snap.line_count - 1)
        starts = snap._line_starts if snap._is_ascii else snap._byte_line_starts  # bytes
        first_byte, end_byte = starts[min(start_line, last)], starts[min(end_line, last) + 1]
        candidates = find_scopes(snap, (first_byte, max(first_byte, end_byte)))
    best: ScopeNode | None = None
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


def definitions_of(snap: Snapshot) -> list[Definition]:
    """Every definition of the file, in document order."""
    index = file_index(snap)
    return index.all_definitions() if index is not None else []


def definitions_named(snap: Snapshot, names: Iterable[str]) -> list[Definition]:
    """The definitions of these names, in document order."""
    index = file_index(snap)
    return index.definitions_named(names) if index is not None else []


def defined_names(snap: Snapshot) -> set[str]:
    index = file_index(snap)
    return set(index.names()) if index is not None else set()


def definition_of_scope(snap: Snapshot, item: ScopeNode) -> Definition | None:
    """The definition made by a scope's node (e.g. a class's), if the definitions query has it."""
    index = file_index(snap)
    node = item.node
    if index is None or node is None:
        return None
    return index.definition_at(item.scope.start_line, node.type, node.start_byte)


def import_info(snap: Snapshot) -> tuple[list[tuple[int, int]], int]:
    """Runs of consecutive top-level imports (inclusive line ranges) and the insertion line to
    use when there are none."""
    index = file_index(snap)
    if index is None:
        return [], 0
    return index.import_info()


def warm(snap: Snapshot) -> None:
    """Build ``snap``'s index now — e.g. while the editor is idle — so the next pick_context on it
    costs a fraction of a millisecond."""
    index = file_index(snap)
    if index is not None:
        index.import_info()
        index.names()


def warm_if_incremental(snap: Snapshot) -> bool:
    """Build ``snap``'s index now only if that is cheap: it is one edit away from a snapshot
    whose index exists (only the edited top-level nodes are queried). True when the index is
    ready. For the moment a request has just been answered on a new text (listing after a
    keystroke): the next request on that text (a resolve) then finds its context ready."""
    if snap.tree is None:
        return False
    analysed = cached_analysis(snap)
    if analysed is not None and isinstance(analysed.index, FileIndex):
        return True
    derived = snap.__dict__.get("derived_from")
    base = cached_analysis(derived[0]) if derived is not None else None
    if base is None or not isinstance(base.index, FileIndex) or base.index.whole:
        return False
    warm(snap)
    return True
