"""Assemble a prompt: choose sections (target, imports, class, definitions) within a token
budget and render them with line numbers.

Coordinates: 0-based lines, inclusive ``(start_line, end_line)`` ranges, ``str`` offsets and
code-point columns (see :mod:`spark_ls.context.document`).

Token estimate: ``ceil(len(text) / 4)`` of the rendered prompt (about four characters per token
for code with current tokenizers; deliberately simple and slightly pessimistic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spark_ls.context.analysis import Definition, Scope, ScopeNode
from spark_ls.context.document import Snapshot, split_lines
from spark_ls.context.index import (
    defined_names,
    definition_of_scope,
    definitions_named,
    enclosing_node,
    import_info,
    scopes_near,
    warm,
)
from spark_ls.context.scopes import layout_region
from spark_ls.context.symbols import header_end_line, referenced_names

FALLBACK_WINDOW_LINES = 30  # lines either side of the range when there is no tree or no scope
SMALL_DEFINITION_LINES = 15  # a referenced definition up to this long is shown whole

__all__ = ["FALLBACK_WINDOW_LINES", "SMALL_DEFINITION_LINES", "Context", "Section", "estimate_tokens",
           "pick_context", "render_prompt", "warm"]


def estimate_tokens(text: str) -> int:
    """About four characters per token, rounded up."""
    return (len(text) + 3) // 4


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


class _Budget:
    """Tracks the rendered size of chosen sections so the final prompt fits ``budget_tokens``."""

    def __init__(self, budget_tokens: int) -> None:
        self.limit_chars = max(0, budget_tokens) * 4
        self.used_chars = 0
        self.paths: set[str] = set()

    def cost(self, section: Section, width: int) -> int:
        extra = 0 if section.path in self.paths else len(_file_header(section.path))
        return extra + _section_chars(section, width)

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


def _section_chars(section: Section, width: int) -> int:
    """``len(_render_section(section, width))``, counted without rendering."""
    text = section.text
    newlines, returns = text.count("\n"), text.count("\r")
    lines = newlines + returns - text.count("\r\n") + (1 if text and text[-1] not in "\r\n" else 0)
    last_number = section.start_line + lines
    if len(str(last_number)) <= width:
        numbers = lines * width
    else:
        numbers = sum(max(width, len(str(k))) for k in range(section.start_line + 1, last_number + 1))
    return len(section.title) + 3 + numbers + 4 * lines + len(text) - newlines - returns + (width + 7) * section.elided


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


def _definition_sections(snap: Snapshot, path: str, definition: Definition, role: str,
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


def _least_cost(snap: Snapshot, path: str, definition: Definition, label: str, width: int, budget: _Budget) -> int:
    """A lower bound of the budget any of ``_definition_sections(...)`` takes: each option's title
    starts with the same words and each shows at least the definition's first line."""
    title = f"{label}{definition.kind} {definition.name}"
    first = snap.lines[definition.start_line].rstrip("\r\n") if definition.start_line < snap.line_count else ""
    header = 0 if path in budget.paths else len(_file_header(path))
    return header + len(title) + 3 + max(width, len(str(definition.start_line + 1))) + 4 + len(first)


def _class_sections(snap: Snapshot, path: str, scope_node: ScopeNode) -> list[Section]:
    """The class header plus its direct non-scope members (fields, docstring), as contiguous runs."""
    scope = scope_node.scope
    node = scope_node.node
    if node is None:  # recovered from a broken file's layout: the header line only
        lines: set[int] = {scope.start_line}
    else:
        definition = definition_of_scope(snap, scope_node)
        body = definition.body if definition else node.child_by_field_name("body")
        header_end = min(header_end_line(snap, node, body), scope.end_line)
        lines = set(range(scope.start_line, header_end + 1))
        if body is not None:
            scope_ids = {n.id for n in (s.node for s in scopes_near(snap, scope.start_line, scope.end_line)) if n}
            for child in body.named_children:
                if child.is_extra or child.id in scope_ids:
                    continue
                if any(c.id in scope_ids for c in child.children):  # e.g. an export wrapper around a method
                    continue
                first, last = snap.node_lines(child)
                if first > scope.end_line:  # past a class bounded in a broken file
                    break
                lines.update(range(first, min(last, scope.end_line) + 1))
    runs: list[tuple[int, int]] = []
    for line in sorted(lines):
        if runs and all(not snap.lines[gap].strip() for gap in range(runs[-1][1] + 1, line)):
            runs[-1] = (runs[-1][0], line)  # only blank lines in between: keep one section
        else:
            runs.append((line, line))
    title = f"{scope.kind} {scope.qualname or scope.name}: header and fields"
    return [_section(snap, path, title, a, b, "class", symbol=scope.name) for a, b in runs]


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

    target_node = enclosing_node(snap, start_line, end_line) if snap.tree is not None else None
    target = target_node.scope if target_node else None
    inner_block = None
    if target is not None and snap.tree is not None and snap.tree.root_node.has_error and any(
        target.start <= s.scope.start and s.scope.end <= target.end and s.scope != target
        for s in scopes_near(snap, target.start_line, target.end_line)
    ):
        # Broken code directly inside a scope that holds other definitions (a method that lost
        # its header): the broken block alone, never the whole class with its other members.
        inner_block = layout_region(snap, start_line, end_line, within=target)
        if inner_block is not None:
            target_node = target = None
    if target is not None:
        lo_limit, hi_limit = target.start_line, target.end_line
        title = f"target: {target.kind} {target.qualname or target.name}"
    else:
        lo_limit = max(0, start_line - FALLBACK_WINDOW_LINES)
        hi_limit = min(last_line, end_line + FALLBACK_WINDOW_LINES)
        block = inner_block or layout_region(snap, start_line, end_line)
        if block is not None:  # broken code outside any scope: its own block, not the neighbours
            lo_limit, hi_limit = block
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
        runs, insert_line = import_info(snap)
        import_region = runs[0] if runs else (insert_line, insert_line - 1)
        for run_start, run_end in runs:
            try_add([_section(snap, path, "imports", run_start, run_end, "imports")], width, covered)

    if snap.tree is None:
        prompt = render_prompt(sections, {path: width})
        return Context(target, region, import_region, sections, prompt, estimate_tokens(prompt))

    # 3) The class around a method (its header and fields).
    enclosing_class: ScopeNode | None = None
    if target is not None:
        for item in scopes_near(snap, target.start_line, target.end_line):
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
        for definition in definitions_named(snap, [owner]):
            if definition.name == owner and definition.kind not in ("function", "method"):
                try_add(_definition_sections(snap, path, definition, "class", ""), width, covered)

    # 4) Same-file definitions the target references.
    names = referenced_names(snap, region[0], region[1])
    first_use = {name: index for index, name in enumerate(names)}
    own_name = target.name if target else None
    candidates = [
        d for d in definitions_named(snap, first_use)
        if d.name in first_use and d.name != own_name
        and not (d.start_line <= region[1] and d.end_line >= region[0])
    ]
    class_scope = enclosing_class.scope if enclosing_class else None

    def rank(d: Definition) -> tuple[int, int, int]:
        group = 0 if class_scope is not None and d.parent_scope == class_scope else (1 if d.top_level else 2)
        return group, first_use[d.name], d.start_line

    for definition in sorted(candidates, key=rank):
        if budget.used_chars + _least_cost(snap, path, definition, "", width, budget) > budget.limit_chars:
            continue  # no option fits (each shows at least its title and first line): skip building them
        try_add(_definition_sections(snap, path, definition, "definition", ""), width, covered)

    # 5) Definitions in other open documents for names this file does not define.
    defined_here = defined_names(snap)
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
            matches = [d for d in definitions_named(other, wanted_order) if d.name in wanted_order]
            for definition in sorted(matches, key=lambda d: (not d.top_level, wanted_order[d.name], d.start_line)):
                if budget.used_chars + _least_cost(other, other_path, definition, "", other_width, budget) \
                        > budget.limit_chars:
                    continue
                try_add(_definition_sections(other, other_path, definition, "other", ""), other_width, other_covered)

    prompt = render_prompt(sections, widths)
    return Context(target, region, import_region, sections, prompt, estimate_tokens(prompt))
