"""Pick what a model needs to see to edit a range: the enclosing scope, imports, the class
around a method, and the definitions the code uses, within a token budget.

Coordinates: 0-based lines, inclusive ``(start_line, end_line)`` ranges, ``str`` offsets and
code-point columns (see :mod:`spark_ls.context.document`).

Token estimate: ``ceil(len(text) / 4)`` of the rendered prompt (about four characters per token
for code with current tokenizers; deliberately simple and slightly pessimistic).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import tree_sitter

from spark_ls.context.document import Snapshot, split_lines

SCOPE_KINDS = ("function", "method", "class")
FALLBACK_WINDOW_LINES = 30  # lines either side of the range when there is no tree or no scope
SMALL_DEFINITION_LINES = 15  # a referenced definition up to this long is shown whole
_ANONYMOUS = "<anonymous>"


def estimate_tokens(text: str) -> int:
    """About four characters per token, rounded up."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Scope:
    kind: str
    name: str
    start_line: int
    end_line: int
    start: int  # str offsets
    end: int
    qualname: str = ""  # e.g. "Outer.Inner.method"


@dataclass(frozen=True)
class SyntaxProblem:
    start_line: int
    start_col: int  # code points
    end_line: int
    end_col: int
    message: str


@dataclass(frozen=True)
class Section:
    title: str
    start_line: int
    end_line: int
    text: str  # the lines start_line..end_line, endings kept (not numbered)
    path: str = ""
    role: str = ""  # target | imports | class | definition | other
    elided: bool = False  # only the signature is shown; the body is left out
    symbol: str = ""  # the name of the scope or definition shown, if any


@dataclass(frozen=True)
class Context:
    """What to show the model.

    - ``target``: the smallest function/method/class enclosing the range, or None (module level,
      or no tree).
    - ``region``: inclusive line range of the target section, i.e. the lines the model is shown
      as editable: the target scope, or a window of at most the budget around the range, or
      (without a scope) ``FALLBACK_WINDOW_LINES`` either side of the range. When the range
      itself is bigger than the budget allows, the region keeps its start and covers less.
    - ``import_region``: where imports live, for allowing new imports. With imports: the inclusive
      line range of the first block of top-level imports (new imports go anywhere from just before
      its first line to just after its last). Without imports: the *empty* range ``(n, n - 1)``,
      meaning "insert before line ``n``", where ``n`` follows any leading comments, module
      docstring or package clause (``n`` may equal the line count). None when the language has
      no tree (no grammar) or no imports query.
    - ``sections``: in priority order (target, imports, enclosing class, same-file definitions,
      other files' definitions); ``prompt`` renders them grouped by file and in line order.
    """

    target: Scope | None
    region: tuple[int, int]
    import_region: tuple[int, int] | None
    sections: list[Section]
    prompt: str
    tokens: int


# ---------------------------------------------------------------------------------------------
# Per-snapshot analysis (cached: a snapshot is immutable).


@dataclass
class _ScopeNode:
    scope: Scope
    node: tree_sitter.Node
    receiver: str | None = None  # the type a method belongs to when not nested in it (Go)


@dataclass
class _Definition:
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
class _Analysis:
    scopes: list[_ScopeNode] = field(default_factory=list)
    definitions: list[_Definition] | None = None
    import_runs: list[tuple[int, int]] | None = None
    import_insert_line: int | None = None


_cache: weakref.WeakKeyDictionary[Snapshot, _Analysis] = weakref.WeakKeyDictionary()


_cache_lock = threading.Lock()


def _analysis(snap: Snapshot) -> _Analysis:
    with _cache_lock:
        found = _cache.get(snap)
    if found is None:
        found = _Analysis(scopes=_find_scopes(snap))  # computed outside the lock; a race only repeats work
        with _cache_lock:
            found = _cache.setdefault(snap, found)
    return found


def _matches(snap: Snapshot, query_name: str, node: tree_sitter.Node | None = None,
             byte_range: tuple[int, int] | None = None) -> list[dict[str, list[tree_sitter.Node]]]:
    if snap.tree is None or snap.language is None:
        return []
    query = snap.language.query(query_name)
    if query is None:
        return []
    cursor = tree_sitter.QueryCursor(query)
    if byte_range is not None:
        cursor.set_byte_range(*byte_range)
    return [captures for _, captures in cursor.matches(node or snap.tree.root_node)]


def _node_text(snap: Snapshot, node: tree_sitter.Node) -> str:
    return snap.data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _kind_node(captures: dict[str, list[tree_sitter.Node]], prefix: str) -> tuple[str, tree_sitter.Node] | None:
    for capture, nodes in captures.items():
        if capture.startswith(prefix) and nodes:
            return capture[len(prefix) :], nodes[0]
    return None


def _find_scopes(snap: Snapshot, byte_range: tuple[int, int] | None = None) -> list[_ScopeNode]:
    """Scopes of the whole file, or (with ``byte_range``) those intersecting the range — which
    include every scope enclosing it, at a cost proportional to the range, not the file."""
    raw: dict[int, tuple[str, str, tree_sitter.Node]] = {}
    receivers: dict[int, str] = {}
    for captures in _matches(snap, "scopes", byte_range=byte_range):
        found = _kind_node(captures, "scope.")
        if found is None:
            continue
        kind, node = found
        names = captures.get("name")
        name = _node_text(snap, names[0]) if names else _ANONYMOUS
        raw.setdefault(node.id, (kind, name, node))
        if captures.get("receiver"):
            receivers[node.id] = _node_text(snap, captures["receiver"][0])
    # A definition matched both bare and wrapped (decorators, export) is kept once, wrapped.
    for node_id, (kind, name, node) in list(raw.items()):
        parent = node.parent
        if parent is not None and parent.id in raw and raw[parent.id][1] == name:
            del raw[node_id]
    ordered = sorted(raw.values(), key=lambda item: (item[2].start_byte, -item[2].end_byte))
    result: list[_ScopeNode] = []
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
        result.append(_ScopeNode(Scope(kind, name, start_line, end_line, start, end, qualname), node,
                                 receivers.get(node.id)))
        stack.append((node.end_byte, kind, qualname))
    return result


def all_scopes(snap: Snapshot, kinds: Iterable[str] = SCOPE_KINDS) -> list[Scope]:
    """Every scope of the given kinds, in document order (outer before inner)."""
    wanted = set(kinds)
    return [item.scope for item in _analysis(snap).scopes if item.scope.kind in wanted]


def _enclosing(snap: Snapshot, start_line: int, end_line: int) -> _ScopeNode | None:
    best: _ScopeNode | None = None
    with _cache_lock:
        analysed = _cache.get(snap)
    if analysed is not None:
        candidates = analysed.scopes
    elif not snap.lines:
        return None
    else:
        # Right after a keystroke nothing is cached: listing actions must not wait for a
        # whole-file analysis, so look only at the scopes around the range.
        last = max(0, snap.line_count - 1)
        starts = snap._line_starts if snap._is_ascii else snap._byte_line_starts  # bytes
        first_byte, end_byte = starts[min(start_line, last)], starts[min(end_line, last) + 1]
        candidates = _find_scopes(snap, (first_byte, max(first_byte, end_byte)))
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
    found = _enclosing(snap, start_line, end_line)
    return found.scope if found else None


# ---------------------------------------------------------------------------------------------
# Syntax errors


def syntax_errors(snap: Snapshot) -> list[SyntaxProblem]:
    """ERROR and MISSING nodes as problems (outermost ERROR only), in document order.

    For Python, tree-sitter's error recovery can start an ERROR node far above the mistake
    (a missing ':' after a def is reported at the first import). CPython's own parser pins the
    first error exactly, so it replaces the tree-sitter problems that start before it.
    """
    problems = _tree_sitter_errors(snap)
    if problems and snap.language is not None and snap.language.name == "python":
        precise = _python_error(snap)
        # Only where tree-sitter's first report is an ERROR above CPython's: its own messages
        # ("missing ')'") are better than CPython's "invalid syntax" when it finds the right line.
        if precise is not None and problems[0].start_line < precise.start_line and "missing" not in problems[0].message:
            problems = [precise] + [p for p in problems if p.start_line > precise.start_line]
    return problems


def _python_error(snap: Snapshot) -> SyntaxProblem | None:
    try:
        compile(snap.text, "<spark-ls>", "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
    except SyntaxError as exc:
        if not exc.lineno:
            return None
        line = min(exc.lineno - 1, max(0, snap.line_count - 1))
        text = snap.lines[line].rstrip("\r\n") if snap.lines else ""
        col = min(max((exc.offset or 1) - 1, 0), len(text))
        end_col = len(text) if (exc.end_lineno or exc.lineno) != exc.lineno else min(max((exc.end_offset or 0) - 1, col), len(text))
        if end_col <= col:  # a point (e.g. "expected ':'" at the line end): underline the statement
            col, end_col = len(text) - len(text.lstrip()), len(text)
        return SyntaxProblem(line, col, line, end_col, f"syntax error: {exc.msg}")
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, absurd nesting
        return None
    return None


def _tree_sitter_errors(snap: Snapshot) -> list[SyntaxProblem]:
    if snap.tree is None or not snap.tree.root_node.has_error:
        return []
    problems: list[SyntaxProblem] = []
    stack = [snap.tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            problems.append(_problem(snap, node.start_byte, node.start_byte, f"syntax error: missing {_quote(node.type)}"))
            continue
        if node.is_error and node.parent is not None:
            problems.append(_error_problem(snap, node))
            continue
        if node.is_error:  # the root itself: report what is inside, or the whole text as a last resort
            inner_errors = [c for c in node.children if c.has_error or c.is_error or c.is_missing]
            if not inner_errors:
                problems.append(_error_problem(snap, node))
                continue
        stack.extend(child for child in reversed(node.children) if child.has_error or child.is_missing or child.is_error)
    return sorted(problems, key=lambda p: (p.start_line, p.start_col))


def _quote(token: str) -> str:
    return f"'{token}'" if not token.isidentifier() or len(token) <= 2 else token


def _first_leaf(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.child_count:
        node = node.children[0]
    return node


def _error_problem(snap: Snapshot, node: tree_sitter.Node) -> SyntaxProblem:
    leaf = _first_leaf(node)
    token = _node_text(snap, leaf).splitlines()[0] if leaf.end_byte > leaf.start_byte else ""
    if len(token) > 30:
        token = token[:27] + "..."
    message = f"syntax error: unexpected '{token}'" if token.strip() else "syntax error"
    # Underline up to the end of the error's first line: ERROR nodes can run far past the mistake.
    start = snap.offset_of_byte(node.start_byte)
    end = snap.offset_of_byte(node.end_byte)
    line = snap.line_of_offset(start)
    line_end = snap.offset_of_line(line) + len(snap.lines[line].rstrip("\r\n")) if snap.lines else start
    return _problem_offsets(snap, start, max(start, min(end, line_end)), message)


def _problem(snap: Snapshot, start_byte: int, end_byte: int, message: str) -> SyntaxProblem:
    return _problem_offsets(snap, snap.offset_of_byte(start_byte), snap.offset_of_byte(end_byte), message)


def _problem_offsets(snap: Snapshot, start: int, end: int, message: str) -> SyntaxProblem:
    start_line, start_col = snap.position_of(start)
    end_line, end_col = snap.position_of(end)
    return SyntaxProblem(start_line, start_col, end_line, end_col, message)


# ---------------------------------------------------------------------------------------------
# Imports, definitions, references


def _header_end_line(snap: Snapshot, node: tree_sitter.Node, body: tree_sitter.Node | None) -> int:
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


def _definitions(snap: Snapshot) -> list[_Definition]:
    analysis = _analysis(snap)
    if analysis.definitions is not None:
        return analysis.definitions
    found_by_key: dict[tuple[int, str], tuple[str, str, tree_sitter.Node, tree_sitter.Node | None]] = {}
    for captures in _matches(snap, "definitions"):
        found = _kind_node(captures, "definition.")
        if found is None:
            continue
        kind, node = found
        body = captures.get("body", [None])[0]
        for name_node in captures.get("name", []):  # several for `a, b = ...`
            name = _node_text(snap, name_node)
            earlier = found_by_key.get((node.id, name))
            if earlier is None or (earlier[3] is None and body is not None):  # prefer the match with a body
                found_by_key[(node.id, name)] = (kind, name, node, body)
    raw = list(found_by_key.values())
    ids: dict[int, set[str]] = {}
    for _, name, node, _ in raw:
        ids.setdefault(node.id, set()).add(name)
    scope_by_node = {item.node.id: item.scope for item in analysis.scopes}
    definitions: list[_Definition] = []
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
        definitions.append(_Definition(
            kind, name, node, body, start_line, end_line, _header_end_line(snap, node, body),
            top_level=parent_scope is None, parent_scope=parent_scope,
        ))
    definitions.sort(key=lambda d: (d.node.start_byte, d.name))
    analysis.definitions = definitions
    return definitions


def _import_info(snap: Snapshot) -> tuple[list[tuple[int, int]], int]:
    """Runs of consecutive top-level imports (inclusive line ranges) and the insertion line to
    use when there are none."""
    analysis = _analysis(snap)
    if analysis.import_runs is not None and analysis.import_insert_line is not None:
        return analysis.import_runs, analysis.import_insert_line
    imports: dict[int, tree_sitter.Node] = {}
    anchors: set[int] = set()
    for captures in _matches(snap, "imports"):
        for node in captures.get("import", []):
            imports[node.id] = node
        for node in captures.get("import.anchor", []):
            anchors.add(node.id)
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
    analysis.import_runs, analysis.import_insert_line = runs, insert_line
    return runs, insert_line


def _referenced_names(snap: Snapshot, start_line: int, end_line: int) -> list[str]:
    """Names the lines use, in first-use order."""
    if snap.tree is None:
        return []
    start_byte = len(snap.text[: snap.offset_of_line(start_line)].encode("utf-8"))
    end_byte = len(snap.text[: snap.offset_of_line(end_line + 1)].encode("utf-8"))
    seen: dict[str, None] = {}
    nodes: list[tree_sitter.Node] = []
    for captures in _matches(snap, "references", byte_range=(start_byte, end_byte)):
        nodes += [n for n in captures.get("reference", []) if start_byte <= n.start_byte and n.end_byte <= end_byte]
    for node in sorted(nodes, key=lambda n: n.start_byte):
        seen.setdefault(_node_text(snap, node), None)
    return list(seen)


# ---------------------------------------------------------------------------------------------
# Context


class _Budget:
    """Tracks the rendered size of chosen sections so the final prompt fits ``budget_tokens``."""

    def __init__(self, budget_tokens: int) -> None:
        self.limit_chars = max(0, budget_tokens) * 4
        self.used_chars = 0
        self.paths: set[str] = set()

    def cost(self, section: Section, width: int) -> int:
        extra = 0 if section.path in self.paths else len(_file_header(section.path))
        return extra + len(_render_section(section, width))

    def fits(self, section: Section, width: int) -> bool:
        return self.used_chars + self.cost(section, width) <= self.limit_chars

    def take(self, section: Section, width: int) -> None:
        self.used_chars += self.cost(section, width)
        self.paths.add(section.path)


def _gutter(snap: Snapshot) -> int:
    return max(4, len(str(snap.line_count)))


def _file_header(path: str) -> str:
    return f"File: {path}\n"


def _render_section(section: Section, width: int) -> str:
    out = [f"[{section.title}]\n"]
    for number, line in enumerate(_bare_lines(section.text), start=section.start_line + 1):
        out.append(f"{number:>{width}} | {line}\n")
    if section.elided:
        out.append(f"{'':>{width}} | ...\n")
    return "".join(out)


def _bare_lines(text: str) -> list[str]:
    return [line.rstrip("\r\n") for line in split_lines(text)]


def render_prompt(sections: Sequence[Section], widths: dict[str, int]) -> str:
    """Sections grouped by file (first-seen order), each file's sections in line order."""
    order: list[str] = []
    for section in sections:
        if section.path not in order:
            order.append(section.path)
    out: list[str] = []
    for path in order:
        out.append(_file_header(path))
        for section in sorted((s for s in sections if s.path == path), key=lambda s: (s.start_line, s.end_line)):
            out.append(_render_section(section, widths.get(path, 4)))
    return "".join(out)


def _window(snap: Snapshot, lo_limit: int, hi_limit: int, start_line: int, end_line: int,
            room_chars: int, width: int, title_chars: int) -> tuple[int, int]:
    """The largest line window inside [lo_limit, hi_limit] holding the range (or as much of its
    start as fits) whose rendering fits ``room_chars``; grows alternately down and up."""
    def cost(line: int) -> int:
        return width + 4 + len(snap.lines[line].rstrip("\r\n"))

    lo, hi = max(lo_limit, start_line), min(hi_limit, end_line)
    lo, hi = min(lo, hi_limit), max(hi, lo_limit)
    lo = min(lo, hi)
    used = title_chars + sum(cost(i) for i in range(lo, hi + 1))
    while hi > lo and used > room_chars:
        used -= cost(hi)
        hi -= 1
    grew = True
    while grew:
        grew = False
        if hi < hi_limit and used + cost(hi + 1) <= room_chars:
            hi += 1
            used += cost(hi)
            grew = True
        if lo > lo_limit and used + cost(lo - 1) <= room_chars:
            lo -= 1
            used += cost(lo)
            grew = True
    return lo, hi


def _section(snap: Snapshot, path: str, title: str, start_line: int, end_line: int, role: str,
             elided: bool = False, symbol: str = "") -> Section:
    return Section(title, start_line, end_line, snap.line_text(start_line, end_line), path, role, elided, symbol)


def _definition_sections(snap: Snapshot, path: str, definition: _Definition, role: str,
                         label: str) -> list[Section]:
    """Whole definition when small, then the signature alone, as alternatives to try in order."""
    title = f"{label}{definition.kind} {definition.name}"
    options: list[Section] = []
    length = definition.end_line - definition.start_line + 1
    if length <= SMALL_DEFINITION_LINES:
        options.append(_section(snap, path, title, definition.start_line, definition.end_line, role,
                                symbol=definition.name))
    if definition.signature_end_line < definition.end_line or not options:
        options.append(_section(snap, path, f"{title} (signature)", definition.start_line,
                                definition.signature_end_line, role,
                                elided=definition.signature_end_line < definition.end_line, symbol=definition.name))
    return options


def _class_sections(snap: Snapshot, path: str, scope_node: _ScopeNode) -> list[Section]:
    """The class header plus its direct non-scope members (fields, docstring), as contiguous runs."""
    scope = scope_node.scope
    definitions = {d.node.id: d for d in _definitions(snap)}
    definition = definitions.get(scope_node.node.id)
    body = definition.body if definition else scope_node.node.child_by_field_name("body")
    header_end = _header_end_line(snap, scope_node.node, body)
    lines: set[int] = set(range(scope.start_line, header_end + 1))
    if body is not None:
        scope_ids = {s.node.id for s in _analysis(snap).scopes}
        for child in body.named_children:
            if child.is_extra or child.id in scope_ids:
                continue
            if any(c.id in scope_ids for c in child.children):  # e.g. an export wrapper around a method
                continue
            first, last = snap.node_lines(child)
            lines.update(range(first, last + 1))
    runs: list[tuple[int, int]] = []
    for line in sorted(lines):
        if runs and all(not snap.lines[gap].strip() for gap in range(runs[-1][1] + 1, line)):
            runs[-1] = (runs[-1][0], line)  # only blank lines in between: keep one section
        else:
            runs.append((line, line))
    title = f"{scope.kind} {scope.qualname or scope.name}: header and fields"
    return [_section(snap, path, title, a, b, "class", symbol=scope.name) for a, b in runs]


def warm(snap: Snapshot) -> None:
    """Compute ``snap``'s cached analysis (scopes, definitions, imports) now — e.g. while the
    editor is idle — so the next pick_context on it costs a fraction of a millisecond."""
    if snap.tree is None:
        return
    _analysis(snap)
    _definitions(snap)
    _import_info(snap)


def pick_context(
    snap: Snapshot,
    start_line: int,
    end_line: int,
    *,
    path: str,
    budget_tokens: int = 2000,
    others: Sequence[tuple[str, Snapshot]] = (),
) -> Context:
    """Choose sections for the range ``start_line..end_line`` (inclusive) within ``budget_tokens``.

    Priority (each later kind only gets what budget is left): 1) the target scope, always, cut to
    a window around the range when it alone exceeds the budget; 2) import blocks; 3) for a method,
    the enclosing class header and fields; 4) same-file definitions the target references (whole
    when at most ``SMALL_DEFINITION_LINES`` lines, else the signature); members of the same class
    first, then top-level ones, then nested ones, each group in first-use order; 5) definitions
    from ``others`` (other open documents) that the target references and this file does not
    define. The target section is always present, even if one line exceeds a tiny budget.
    """
    last_line = max(0, snap.line_count - 1)
    start_line, end_line = sorted((max(0, min(start_line, last_line)), max(0, min(end_line, last_line))))
    width = _gutter(snap)
    budget = _Budget(budget_tokens)
    sections: list[Section] = []

    target_node = _enclosing(snap, start_line, end_line) if snap.tree is not None else None
    target = target_node.scope if target_node else None
    if target is not None:
        lo_limit, hi_limit = target.start_line, target.end_line
        title = f"target: {target.kind} {target.qualname or target.name}"
    else:
        lo_limit = max(0, start_line - FALLBACK_WINDOW_LINES)
        hi_limit = min(last_line, end_line + FALLBACK_WINDOW_LINES)
        title = "target: lines around the selection"
    room = budget.limit_chars - len(_file_header(path))
    if snap.line_count == 0:
        region = (0, 0)
        target_section = Section(title, 0, 0, "", path, "target", symbol=target.qualname if target else "")
    else:
        partly = " (partly)" if target is not None else ""
        # Reserve room for the " (partly)" mark before knowing whether the window is cut.
        region = _window(snap, lo_limit, hi_limit, start_line, end_line, room, width, len(f"[{title}{partly}]\n"))
        if region != (lo_limit, hi_limit):
            title += partly
        target_section = _section(snap, path, title, region[0], region[1], "target",
                                  symbol=target.qualname if target else "")
    sections.append(target_section)
    budget.take(target_section, width)
    covered: set[int] = set(range(region[0], region[1] + 1))

    def try_add(options: list[Section], section_width: int, path_covered: set[int]) -> bool:
        for option in options:
            lines = set(range(option.start_line, option.end_line + 1))
            if lines <= path_covered:
                return True  # already visible
            if lines & path_covered:
                continue
            if budget.fits(option, section_width):
                sections.append(option)
                budget.take(option, section_width)
                path_covered |= lines
                return True
        return False

    import_region: tuple[int, int] | None = None
    if snap.tree is not None and snap.language is not None and snap.language.queries.get("imports"):
        runs, insert_line = _import_info(snap)
        import_region = runs[0] if runs else (insert_line, insert_line - 1)
        for run_start, run_end in runs:
            try_add([_section(snap, path, "imports", run_start, run_end, "imports")], width, covered)

    if snap.tree is None:
        prompt = render_prompt(sections, {path: width})
        return Context(target, region, import_region, sections, prompt, estimate_tokens(prompt))

    # 3) The class around a method (its header and fields).
    enclosing_class: _ScopeNode | None = None
    if target is not None:
        for item in _analysis(snap).scopes:
            scope = item.scope
            around = scope.kind == "class" and scope.start <= target.start and target.end <= scope.end
            if around and scope != target and (enclosing_class is None or scope.start >= enclosing_class.scope.start):
                enclosing_class = item
    if enclosing_class is not None:
        class_sections = _class_sections(snap, path, enclosing_class)
        cost = sum(budget.cost(s, width) for s in class_sections)
        if budget.used_chars + cost <= budget.limit_chars:
            for section in class_sections:
                try_add([section], width, covered)
        else:
            try_add(class_sections[:1], width, covered)

    # 3b) The type itself when methods live apart from it (Rust impl blocks, Go receivers).
    owner = enclosing_class.scope.name if enclosing_class else (target_node.receiver if target_node else None)
    if owner:
        for definition in _definitions(snap):
            if definition.name == owner and definition.kind not in ("function", "method"):
                try_add(_definition_sections(snap, path, definition, "class", ""), width, covered)

    # 4) Same-file definitions the target references.
    names = _referenced_names(snap, region[0], region[1])
    first_use = {name: index for index, name in enumerate(names)}
    own_name = target.name if target else None
    candidates = [
        d for d in _definitions(snap)
        if d.name in first_use and d.name != own_name
        and not (d.start_line <= region[1] and d.end_line >= region[0])
    ]
    class_scope = enclosing_class.scope if enclosing_class else None

    def rank(d: _Definition) -> tuple[int, int, int]:
        group = 0 if class_scope is not None and d.parent_scope == class_scope else (1 if d.top_level else 2)
        return group, first_use[d.name], d.start_line

    for definition in sorted(candidates, key=rank):
        try_add(_definition_sections(snap, path, definition, "definition", ""), width, covered)

    # 5) Definitions in other open documents for names this file does not define.
    defined_here = {d.name for d in _definitions(snap)}
    wanted = [n for n in names if n not in defined_here and n != own_name]
    widths = {path: width}
    if wanted:
        wanted_order = {name: index for index, name in enumerate(wanted)}
        for other_path, other in others:
            if other_path == path or other.tree is None:
                continue
            other_width = _gutter(other)
            widths.setdefault(other_path, other_width)
            other_covered: set[int] = set()
            matches = [d for d in _definitions(other) if d.name in wanted_order]
            for definition in sorted(matches, key=lambda d: (not d.top_level, wanted_order[d.name], d.start_line)):
                try_add(_definition_sections(other, other_path, definition, "other", ""), other_width, other_covered)

    prompt = render_prompt(sections, widths)
    return Context(target, region, import_region, sections, prompt, estimate_tokens(prompt))
