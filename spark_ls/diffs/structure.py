"""Structural invariants: what an edit may do to the definitions around its target.

Confinement (``apply.check_confined``) keeps every line outside the action's region
byte-identical. These checks add defence in depth *inside* the region, in every edit format:

* **Siblings are untouchable.** If the region holds more than the target (tree-sitter's error
  recovery can make a broken function swallow the next one), the sibling definitions,
  statements, decorators, comments and blank lines after the target's own end must come out
  byte-identical: an edit that removes, moves or rewrites them is refused, naming them.
* **No new neighbours.** A new definition at the target's level (top level or class level) is
  only allowed for actions that declare it (``allow_new_definitions``: extract function), and
  never with a name already bound at that level. Other new statements at that level (example
  calls, prints) are never allowed.
* **The target keeps its name**, and is not defined a second time.

All of it is line-based and language-agnostic (indentation, a few patterns for definition heads
and a tree-sitter veto for lines inside multi-line strings and comments), so it also works when
the file does not parse, which is exactly when the tree is least trustworthy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from spark_ls.diffs.errors import PatchRefused
from spark_ls.diffs.text import LazyLines, indent_of, indent_width

if TYPE_CHECKING:
    import tree_sitter

LineRange = tuple[int, int]
Change = tuple[int, int, int, int]  # old_first, old_end, new_first, new_end (end exclusive)
TreeSource = Callable[[], "tree_sitter.Tree | None"]

_MODIFIERS = (
    r"(?:(?:export|default|declare|pub(?:\([^)]*\))?|public|private|protected|internal|static|final|abstract"
    r"|async|unsafe|const|extern(?:\s+\"[^\"]*\")?|inline|virtual|override|sealed|partial|synchronized|native"
    r"|typedef|template\s*<[^>]*>)\s*)*"
)
# def f / class C / fn f / func (r *T) f / function* f / struct S / impl<T> Trait for S / type T ...
_KEYWORD_HEAD = re.compile(
    _MODIFIERS
    + r"(?:def|class|fn|func|function\*?|struct|enum|interface|trait|impl|mod|type|union|namespace|record|object)"
    + r"\b\s*(?:\([^)]*\)\s*)?(?:<[^>{]*>\s*)?(?:[A-Za-z_$][\w$:]*(?:<[^>{]*>)?\s+for\s+)?([A-Za-z_$][\w$]*)"
)
_CONTAINER = re.compile(_MODIFIERS + r"(?:class|struct|impl|interface|trait|namespace|mod|enum|object|record|union)\b")
# const f = ... / let f = / var f = / f = ... / f: int = ...
_BINDING = re.compile(
    r"(?:export\s+)?(?:(?:const|let|var|static|pub\s+static|pub\s+const)\s+)?(?:mut\s+)?([A-Za-z_$][\w$]*)"
    r"\s*(?::[^=]*)?(?<![=!<>])=(?!=)"
)
# A C-family function signature without a keyword: `int add(int a, int b) {`, `void Foo::bar()`.
_C_SIGNATURE = re.compile(
    r"(?!(?:return|if|for|while|switch|case|else|do|goto|sizeof|typedef|using|throw|new|delete|await|yield"
    r"|catch|super|this|match|loop|defer|go|select|elif|with|assert|print)\b)"
    r"(?:[A-Za-z_][\w\s\*&:<>,~\[\]]*?\b)?([A-Za-z_~]\w*(?:::~?\w+)*)\s*\([^;]*$"
)
_PY_IMPORT = re.compile(r"(?:from\s+\S+\s+)?import\s+(.+)")
_IMPORT_LINE = re.compile(r"(?:import\b|from\s+\S+\s+import\b|use\s+[\w:{]|#\s*include\b|using\s+\w)")
_PREPROCESSOR = re.compile(r"#\s*(?:if|ifdef|ifndef|elif|else|endif|define|undef|include|pragma|error|line)\b")
_LABEL = re.compile(r"(?:\w+|case\b.*|default)\s*:\s*$")
_TRAILING_COMMENT = {
    True: re.compile(r"\s+#[^'\"]*$"),
    False: re.compile(r"\s*(?://[^'\"]*|/\*[^'\"]*\*/)$"),
}
_PY_CONTINUES = ("\\", "(", "[", "{", ",", "+", "-", "*", "/", "%", "|", "&", "=", "<", ">", ".")
_STRINGY = ("string", "comment", "heredoc", "template")


_JS_FUNCTION_BINDING = re.compile(
    r"(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*(?:async\s+)?"
    r"(?:function\b|\([^)]*\)?\s*(?::[^=]+)?=>|\(\s*$|[A-Za-z_$][\w$]*\s*=>)"
)


def definition_name(stripped: str, python: bool) -> str | None:
    """The name a line defines, if it is a definition head (not a plain binding)."""
    found = _KEYWORD_HEAD.match(stripped)
    if found:
        return found.group(1)
    if not python:
        found = _JS_FUNCTION_BINDING.match(stripped)
        if found:
            return found.group(1)
        found = _C_SIGNATURE.match(stripped)
        if found and not stripped.rstrip().endswith((";", ",")):
            return found.group(1)
    return None


def bound_name(stripped: str, python: bool) -> str | None:
    """The name a line defines or binds (``x = 1`` -> ``x``), if any."""
    name = definition_name(stripped, python)
    if name:
        return name
    found = _BINDING.match(stripped)
    return found.group(1) if found else None


def _is_comment(stripped: str, python: bool) -> bool:
    if python:
        return stripped.startswith("#")
    return stripped.startswith(("//", "/*", "*", "#")) and not stripped.startswith("#[")


def _is_decorator(stripped: str) -> bool:
    return stripped.startswith(("@", "#["))


class _Lines:
    """Content lines with cached indentation widths and a lazy tree for the string veto."""

    def __init__(self, lines: Sequence[str], python: bool, tree: TreeSource | None) -> None:
        self.lines = lines
        self.python = python
        self._tree_source = tree
        self._tree: tree_sitter.Tree | None | bool = False
        self._widths: dict[int, int] = {}

    def width(self, index: int) -> int:
        found = self._widths.get(index)
        if found is None:
            found = self._widths[index] = indent_width(indent_of(self.lines[index]))
        return found

    def stripped(self, index: int) -> str:
        return self.lines[index].strip()

    def neutral(self, index: int) -> bool:
        """Blank, comment or decorator: belongs to whatever follows it."""
        stripped = self.stripped(index)
        return not stripped or _is_comment(stripped, self.python) or _is_decorator(stripped)

    def _previous_code(self, index: int, floor: int) -> str | None:
        back = self._previous_code_line(index, floor)
        return None if back is None else self.stripped(back)

    def _previous_code_line(self, index: int, floor: int) -> int | None:
        for back in range(index - 1, floor - 1, -1):
            stripped = self.stripped(back)
            if stripped and not _is_comment(stripped, self.python):
                return back
        return None

    def inside_token(self, index: int) -> bool:
        """Does line ``index`` start inside a string or comment that began on an earlier line?"""
        if self._tree is False:
            self._tree = self._tree_source() if self._tree_source is not None else None
        tree = self._tree
        if tree is None or tree is True:
            return False
        column = len(indent_of(self.lines[index]).encode("utf-8"))
        node = tree.root_node.descendant_for_point_range((index, column), (index, column))
        while node is not None:
            if node.start_point[0] < index and any(part in node.type for part in _STRINGY):
                return True
            if node.start_point[0] < index and node.type in ("module", "program", "source_file", "translation_unit"):
                return False
            node = node.parent
        return False

    def starts_statement(self, index: int, level: int, floor: int) -> bool:
        """Is line ``index`` a statement (or definition) at indentation ``level`` or shallower,
        i.e. outside a definition whose header sits at ``level``?"""
        stripped = self.stripped(index)
        if not stripped or self.width(index) > level:
            return False
        if not self.python and _PREPROCESSOR.match(stripped):
            # `#endif` after the target's closing brace is outside it; inside a body it is not.
            back = self._previous_code_line(index, floor)
            return back is not None and self.stripped(back).startswith("}") and self.width(back) <= level
        if self.neutral(index):
            return False
        if stripped[0] in ")]}{" or stripped.startswith(("->", "=>", "where", ":", ".", "?", "&&", "||")):
            return False
        previous = self._previous_code(index, floor)
        if previous is not None:  # a trailing comment says nothing about how the line ends
            previous = _TRAILING_COMMENT[self.python].sub("", previous)
        if self.python:
            if previous is not None and previous.endswith(_PY_CONTINUES):
                return False
        else:
            if _LABEL.match(stripped):
                return False
            if previous is not None and not previous.endswith(("}", ";", "};")):
                return False
        return not self.inside_token(index)


def _label(stripped: str, python: bool) -> str:
    name = bound_name(stripped, python)
    if name:
        return f"`{name}`"
    short = stripped if len(stripped) <= 40 else stripped[:37] + "..."
    return f"`{short}`"


def _header(view: _Lines, scope: LineRange) -> tuple[int, int, str | None] | None:
    """(line, indentation, name) of the definition the region belongs to, or None when the
    region is not a definition (module-level lines)."""
    first, last = scope
    index = next(
        (i for i in range(first, last + 1) if view.stripped(i) and not view.neutral(i)),
        None,
    )
    if index is None:
        return None
    stripped = view.stripped(index)
    name = definition_name(stripped, view.python)
    if name is not None:
        return index, view.width(index), name
    if not view.python:
        # An unnamed header (`static char *` on its own line): a braced block whose closing
        # brace sits at the header's indentation.
        closing = next((i for i in range(last, index, -1) if view.stripped(i) and not view.neutral(i)), None)
        if closing is not None and view.stripped(closing).startswith("}") and view.width(closing) == view.width(index):
            return index, view.width(index), None
    # A window inside a long definition: the header is above the region.
    level = view.width(index)
    for back in range(index - 1, max(-1, index - 5000), -1):
        stripped = view.stripped(back)
        if not stripped or view.neutral(back) or view.width(back) >= level:
            continue
        name = definition_name(stripped, view.python)
        if name is not None:
            return back, view.width(back), name
        level = view.width(back)  # a block inside the definition (if/for/...): keep climbing
        if level == 0:
            return None
    return None


def check_structure(
    old_lines: Sequence[str],
    new_lines: Sequence[str],
    changes: Sequence[Change],
    *,
    scope: LineRange,
    python: bool,
    new_definitions: bool = False,
    old_tree: TreeSource | None = None,
    new_tree: TreeSource | None = None,
) -> None:
    """Raise PatchRefused if the change (old -> new, as ``changes``) breaks a structural
    invariant around the target whose region is ``scope`` (inclusive old lines)."""
    if not changes or not old_lines:
        return
    first, last = scope
    last = min(last, len(old_lines) - 1)
    if first > last:
        return
    old = _Lines(old_lines, python, old_tree)
    new = _Lines(new_lines, python, new_tree)
    _check_no_copies(old, new, changes)
    found = _header(old, (first, last))
    if found is None or found[2] is None or found[0] < first:
        # Not a whole named definition (module-level lines, a window inside a long definition):
        # if the reply rewrites exactly one definition that the region holds, that one is the
        # target; otherwise every definition the change touches must survive it.
        inferred = _rewritten_definition(old, new, changes, (first, last))
        if inferred is not None:
            found = inferred
        else:
            _check_heads_kept(old, new, changes, new_definitions=new_definitions)
            if found is None:
                return
    assert found is not None
    header, level, name = found
    target = f"`{name}`" if name else f"the target at line {header + 1}"

    # 0. Region lines above the target (and its decorators and comments) are not the target.
    start = header
    while start - 1 >= first and old.stripped(start - 1) and old.neutral(start - 1) and old.width(start - 1) <= level:
        start -= 1
    for old_first, old_end, _, _ in changes:
        if old_first < start and old_end > first:
            line = max(old_first, first)
            owner = next((i for i in range(line, start) if old.stripped(i)), line)
            raise PatchRefused(
                f"the edit changes {_label(old.stripped(owner), python)} (line {owner + 1}), above the target "
                f"{target}: code outside the target may not be removed, moved or rewritten"
            )

    # 1. Siblings swallowed by the region: from the first statement at the header's level (and
    #    the comments, decorators and blank lines before it) to the region's end, nothing moves.
    #    In braced languages the target also ends where its braces close.
    sibling_starts = [i for i in range(max(header, first - 1) + 1, last + 1) if old.starts_statement(i, level, header)]
    closed = None if python else brace_end(old.lines, header, last)
    if closed is None and not python:  # unbalanced (a brace lost): the first closing line at its level
        closed = next(
            (i for i in range(header + 1, last + 1) if old.stripped(i).startswith("}") and old.width(i) <= level),
            None,
        )
    if closed is not None and closed < last and any(old.stripped(i) for i in range(closed + 1, last + 1)):
        following = next(i for i in range(closed + 1, last + 1) if old.stripped(i))
        if not sibling_starts or sibling_starts[0] > following:
            sibling_starts.insert(0, following)
    tail = last  # blank lines, comments and decorators at the target's level that end the region
    while tail > header and (not old.stripped(tail) or (old.neutral(tail) and old.width(tail) <= level)):
        tail -= 1
    if not sibling_starts and tail < last:
        sibling_starts = [last + 1]  # only blank lines after the target: they are not its lines
    if sibling_starts:
        protected = sibling_starts[0]
        while protected - 1 > header and protected - 1 >= first and (closed is None or protected - 1 > closed) and (
            not old.stripped(protected - 1) or (old.neutral(protected - 1) and old.width(protected - 1) <= level)
        ):
            protected -= 1
        for old_first, old_end, _, _ in changes:
            touches = old_first < last + 1 and old_end > protected
            inserts_inside = old_first == old_end and protected < old_first <= last + 1
            if touches or inserts_inside:
                line = max(old_first, protected)
                owner = max((s for s in sibling_starts if s <= line), default=sibling_starts[0])
                if owner > last:
                    raise PatchRefused(
                        f"the edit changes the lines after the target {target} (line {protected + 1} on): "
                        "code outside the target may not be removed, moved or rewritten"
                    )
                raise PatchRefused(
                    f"the edit changes {_label(old.stripped(owner), python)} (line {owner + 1}), "
                    f"which is not the target {target}: code outside the target may not be removed, "
                    "moved or rewritten"
                )

    # Braces balanced in the region stay balanced (an edit that drops the closing braces of the
    # code around its target, or leaves one open, changes more than the target).
    if not python:
        _check_braces_kept(old, new, changes, first, last)

    # A container (class, struct, impl...) keeps its members: an edit to it may rewrite them,
    # not remove or rename them.
    if _CONTAINER.match(old.stripped(header)):
        _check_heads_kept(old, new, changes, new_definitions=new_definitions, removals_only=True)

    # 2. What the new lines add at the target's level.
    header_rewritten = any(old_first <= header < old_end for old_first, old_end, _, _ in changes)
    seen_target = 0
    added: list[tuple[int, str | None, str]] = []  # (new line, name, text)
    new_end_line = None if python else _new_target_end(old, new, changes, header, name, level, last)
    new_header = _new_header(new, changes, header, name, level)
    inside_added = False  # in the body of a definition the edit adds above the target
    for _, _, new_first, new_end in changes:
        for index in range(new_first, new_end):
            stripped = new.stripped(index)
            if new_end_line is not None and index > new_end_line and stripped and not new.neutral(index):
                added.append((index, bound_name(stripped, python), stripped))  # after the closing brace
                continue
            if new_header is not None and index < new_header and stripped and not new.neutral(index) and (
                new.width(index) > level and not _IMPORT_LINE.match(stripped)
            ):
                if not inside_added:  # deeper code above the target: not the target's
                    added.append((index, bound_name(stripped, python), stripped))
                continue
            if new_header is not None and index < new_header and stripped and new.width(index) <= level:
                inside_added = definition_name(stripped, python) is not None and not new.neutral(index)
            if not stripped or new.width(index) > level or new.neutral(index):
                continue
            if _IMPORT_LINE.match(stripped):
                continue  # imports are policed by the import region and allow_imports
            defined = definition_name(stripped, python)
            if defined is None:
                if not new.starts_statement(index, level, max(0, new_first - 50)):
                    continue
            elif new.inside_token(index):
                continue
            if name is not None and defined == name and new.width(index) == level:
                seen_target += 1
                continue
            added.append((index, bound_name(stripped, python), stripped))
    if name is not None:
        if header_rewritten and seen_target == 0:
            raise PatchRefused(f"the edit removes or renames the target {target}; this action may not do that")
        if seen_target > (1 if header_rewritten else 0):
            raise PatchRefused(f"the edit defines the target {target} a second time")
    if not added:
        return
    index, added_name, text = added[0]
    if added_name is None:
        raise PatchRefused(
            f"the edit adds code outside the target {target}: `{text[:60]}` (line {index + 1}); "
            "a fix or refactoring may not add statements next to its target"
        )
    if not new_definitions:
        bound_at = _bound_line(old, added_name, new.width(index), header)
        shadow = f", shadowing the `{added_name}` at line {bound_at + 1}" if bound_at is not None else ""
        raise PatchRefused(
            f"the edit adds a new definition `{added_name}` (line {index + 1}) next to the target {target}"
            f"{shadow}; this action may only change its target"
        )
    names = Counter(found_name for _, found_name, _ in added)
    for index, added_name, text in added:
        if added_name is None:
            raise PatchRefused(
                f"the edit adds code outside the target {target}: `{text[:60]}` (line {index + 1})"
            )
        if names[added_name] > 1:
            raise PatchRefused(f"the edit adds `{added_name}` twice")
        bound_at = _bound_line(old, added_name, new.width(index), header)
        if bound_at is not None:
            raise PatchRefused(
                f"the edit adds a definition `{added_name}` (line {index + 1}) that shadows the existing "
                f"`{added_name}` at line {bound_at + 1}"
            )


_BRACE_TOKENS = re.compile(
    r"//[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`"
    r"|^[ \t]*#(?!\[)[^\n]*|[{}]|\n",
    re.DOTALL | re.MULTILINE,
)


def brace_end(lines: Sequence[str], header: int, last: int | None = None) -> int | None:
    """The line where the braces opened at or after ``header`` close again (strings, comments
    and preprocessor lines skipped), or None if they never do within ``last``."""
    last = len(lines) - 1 if last is None else last
    text = "\n".join(lines[header : last + 1])
    depth = 0
    opened = False
    row = header
    for token in _BRACE_TOKENS.finditer(text):
        value = token.group()
        if value == "{":
            depth += 1
            opened = True
        elif value == "}":
            depth -= 1
            if depth < 0:
                return None
            if opened and depth == 0:
                return row
        else:
            row += value.count("\n")
    return None


def _rewritten_definition(
    old: _Lines, new: _Lines, changes: Sequence[Change], region: LineRange
) -> tuple[int, int, str | None] | None:
    """The region's definition a change rewrites, when its new lines define exactly one name and
    the region defines it once (the reply for one function in a region wider than it)."""
    names = {name for _, name in _heads(new, [(n1, n2) for _, _, n1, n2 in changes])}
    if len(names) != 1:
        return None
    (name,) = names
    first, last = region
    matches = [
        i for i in range(first, last + 1)
        if old.stripped(i) and not old.neutral(i) and definition_name(old.stripped(i), old.python) == name
    ]
    if len(matches) != 1:
        return None
    return matches[0], old.width(matches[0]), name


def _new_header(new: _Lines, changes: Sequence[Change], header: int, name: str | None, level: int) -> int | None:
    """The target's header line in the new text (None: not found)."""
    shift = 0
    for o1, o2, n1, n2 in changes:
        if o1 <= header < o2:
            return next(
                (i for i in range(n1, n2) if new.stripped(i) and new.width(i) == level and not new.neutral(i)
                 and (name is None or definition_name(new.stripped(i), new.python) == name)),
                None,
            )
        if o2 <= header:
            shift += (n2 - n1) - (o2 - o1)
    return header + shift


def _brace_balance(lines: Sequence[str]) -> tuple[int, int]:
    """(final depth, lowest depth) of the braces in ``lines`` (strings and comments skipped)."""
    depth = lowest = 0
    for token in _BRACE_TOKENS.finditer("\n".join(lines)):
        value = token.group()
        if value == "{":
            depth += 1
        elif value == "}":
            depth -= 1
            lowest = min(lowest, depth)
    return depth, lowest


def _check_braces_kept(old: _Lines, new: _Lines, changes: Sequence[Change], first: int, last: int) -> None:
    if _brace_balance(old.lines[first : last + 1]) != (0, 0):
        return  # already unbalanced (a syntax fix may well add the missing brace)
    before = sum((n2 - n1) - (o2 - o1) for o1, o2, n1, n2 in changes if o2 <= first and o1 < first)
    inside = sum((n2 - n1) - (o2 - o1) for o1, o2, n1, n2 in changes if o1 <= last + 1)
    new_first, new_last = first + before, last + inside
    if new_last < new_first:
        return
    if _brace_balance(new.lines[new_first : new_last + 1]) != (0, 0):
        raise PatchRefused(
            f"the edit leaves the braces of lines {first + 1}-{last + 1} unbalanced: it would change code "
            "around its target"
        )


def _new_target_end(
    old: _Lines, new: _Lines, changes: Sequence[Change], header: int, name: str | None, level: int, last: int
) -> int | None:
    """In a braced language, the new line where the (rewritten) target's braces close."""
    start: int | None = None
    shift = 0
    for o1, o2, n1, n2 in changes:
        if o1 <= header < o2:  # the header line was rewritten: find it among the new lines
            start = next(
                (i for i in range(n1, n2) if new.stripped(i) and new.width(i) == level
                 and (name is None or definition_name(new.stripped(i), new.python) == name)),
                None,
            )
            if start is None:
                return None
            break
        if o2 <= header:
            shift += (n2 - n1) - (o2 - o1)
    if start is None:
        start = header + shift
    total = sum((n2 - n1) - (o2 - o1) for o1, o2, n1, n2 in changes)
    stop = min(len(new.lines) - 1, last + total + 1)
    if old.stripped(header).rstrip().endswith(";") or brace_end(old.lines, header, last) is None:
        return None  # the old target has no closed braces in its region: nothing to compare with
    return brace_end(new.lines, start, stop)


def _parent_name(view: _Lines, index: int) -> str | None:
    """The name defined by the nearest shallower code line above ``index`` (None: top level)."""
    width = view.width(index)
    if width == 0:
        return None
    for back in range(index - 1, max(-1, index - 2000), -1):
        stripped = view.stripped(back)
        if stripped and not view.neutral(back) and view.width(back) < width:
            return definition_name(stripped, view.python) or stripped
    return None


def _check_no_copies(old: _Lines, new: _Lines, changes: Sequence[Change]) -> None:
    """Refuse a definition head the change adds when the old text keeps an identical one, in
    the same block, outside the changed lines: the definition would exist twice (a reply that
    repeats code past the end of a region that was too small)."""
    added: list[tuple[int, str]] = []
    for _, _, n1, n2 in changes:
        for index in range(n1, n2):
            stripped = new.stripped(index)
            if stripped and not new.neutral(index) and definition_name(stripped, new.python):
                added.append((index, stripped))
    if not added:
        return
    removed = {index for o1, o2, _, _ in changes for index in range(o1, o2)}
    wanted = {stripped for _, stripped in added}
    every = old.lines.all() if isinstance(old.lines, LazyLines) else old.lines
    for index, line in enumerate(every):
        stripped = line.strip()
        if stripped not in wanted or index in removed:
            continue
        for new_index, new_stripped in added:
            if new_stripped == stripped and new.width(new_index) == old.width(index) and (
                _parent_name(new, new_index) == _parent_name(old, index)
            ) and not new.inside_token(new_index):
                name = definition_name(stripped, old.python)
                raise PatchRefused(
                    f"the edit adds a second `{name}` (line {new_index + 1}) next to the one at line {index + 1}"
                )


def _heads(view: _Lines, ranges: Sequence[tuple[int, int]]) -> Counter[tuple[int, str]]:
    heads: Counter[tuple[int, str]] = Counter()
    for start, stop in ranges:
        for index in range(start, stop):
            stripped = view.stripped(index)
            if not stripped or view.neutral(index):
                continue
            name = definition_name(stripped, view.python)
            if name is not None and not view.inside_token(index):
                heads[(view.width(index), name)] += 1
    return heads


def _check_heads_kept(
    old: _Lines, new: _Lines, changes: Sequence[Change], *, new_definitions: bool, removals_only: bool = False
) -> None:
    """A region that is not one definition (module-level lines, or a region the picker could not
    tie to a definition): every definition head the change touches must come out again (same
    name, same indentation), and new ones follow the rules for new definitions."""
    before = _heads(old, [(o1, o2) for o1, o2, _, _ in changes])
    after = _heads(new, [(n1, n2) for _, _, n1, n2 in changes])
    for (width, name), count in before.items():
        if after.get((width, name), 0) < count:
            line = next(
                index for o1, o2, _, _ in changes for index in range(o1, o2)
                if old.stripped(index) and definition_name(old.stripped(index), old.python) == name
            )
            raise PatchRefused(
                f"the edit removes or renames `{name}` (line {line + 1}); an action may change only its target"
            )
    for (width, name), count in after.items():
        if removals_only or count <= before.get((width, name), 0):
            continue
        line = next(
            index for _, _, n1, n2 in changes for index in range(n1, n2)
            if new.stripped(index) and definition_name(new.stripped(index), new.python) == name
        )
        if not new_definitions:
            raise PatchRefused(f"the edit adds a new definition `{name}` (line {line + 1}); this action may not do that")
        bound_at = _bound_line(old, name, width, min(line, len(old.lines) - 1))
        if bound_at is not None or count - before.get((width, name), 0) > 1:
            raise PatchRefused(
                f"the edit adds a definition `{name}` (line {line + 1}) that shadows an existing `{name}`"
            )


def _bound_line(view: _Lines, name: str, level: int, near: int) -> int | None:
    """The old line binding ``name`` at indentation ``level`` in the block around line ``near``
    (the whole file at level 0), if any."""
    lines = view.lines
    start, stop = 0, len(lines)
    if level > 0:
        start = near
        while start > 0 and not (view.stripped(start) and view.width(start) < level):
            start -= 1
        stop = near + 1
        while stop < len(lines) and not (view.stripped(stop) and view.width(stop) < level and not view.neutral(stop)):
            stop += 1
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    if stop - start > 200 and isinstance(lines, LazyLines):
        lines = lines.all()
    for index in range(start, stop):
        line = lines[index]
        if name not in line or not pattern.search(line) or view.width(index) != level:
            continue
        stripped = line.strip()
        if bound_name(stripped, view.python) == name:
            return index
        imported = _PY_IMPORT.match(stripped)
        if imported and name in re.findall(r"(?:\bas\s+)?(\w+)\s*(?:,|\)|$)", imported.group(1)):
            return index
    return None


def definition_keys(lines: Sequence[str], python: bool) -> Counter[tuple[str, ...]]:
    """Every definition head as (enclosing definition names..., name), counted."""
    view = _Lines(lines, python, None)
    stack: list[tuple[int, str]] = []
    keys: Counter[tuple[str, ...]] = Counter()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or view.neutral(index):
            continue
        width = view.width(index)
        while stack and stack[-1][0] >= width:
            stack.pop()
        name = definition_name(stripped, python)
        if name is not None:
            keys[tuple(entry[1] for entry in stack) + (name,)] += 1
            stack.append((width, name))
    return keys


def check_no_new_duplicates(old_lines: Sequence[str], new_lines: Sequence[str], *, python: bool) -> None:
    """Refuse a combined result that defines a name twice at one level where the old text did not
    (two proposals each adding the same helper, or a helper shadowing a definition)."""
    before = definition_keys(old_lines, python)
    after = definition_keys(new_lines, python)
    for key, count in after.items():
        if count > 1 and count > before.get(key, 0):
            raise PatchRefused(f"the combined result defines `{'.'.join(key)}` {count} times")
