"""Scope mode: the reply is the rewritten function/class (small local models write that more
reliably than a diff). The scope's lines are replaced, the code is re-indented to the scope's
own indentation if the model shifted it, and new imports the reply puts before the definition
go into the import region (only those not already imported)."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Sequence

from spark_ls.diffs.errors import PatchRefused
from spark_ls.diffs.parse import DIFF_FENCE_INFO, fenced_blocks, reply_lines
from spark_ls.diffs.structure import brace_end, definition_name
from spark_ls.diffs.text import (
    content,
    dominant_ending,
    fit_indent_map,
    indent_of,
    indent_unit,
    indent_width,
    line_ending,
    split_lines,
    uses_tabs,
)

LineRange = tuple[int, int]
_log = logging.getLogger(__name__)

_IMPORT = re.compile(r"^\s*(?:import\s+\S|from\s+\S+\s+import\b)")
_GUTTER = re.compile(r"^\s*\d+ \| ?")  # the prompt's line-number gutter, echoed back
_CODE_START = re.compile(r"^\s*(?:@|def\s|async\s|class\s|import\s|from\s|function\s|fn\s|pub\s|func\s|export\s)")
_CLOSING = re.compile(r"^[\s)\]}]*[)\]}][;,]?\s*$")
_PY_DEFINITION = re.compile(r"^\s*(?:async\s+def|def|class)\b")


def _code_lines(reply: str, header: str) -> list[str] | None:
    """The reply's code lines (fences and prose stripped), or None if it holds no code."""
    lines = reply_lines(reply)
    blocks = [(info, body) for info, body in fenced_blocks(lines) if info not in DIFF_FENCE_INFO]
    blocks = [(info, body) for info, body in blocks if any(line.strip() for line in body)]
    if blocks:
        main = max(blocks, key=lambda block: sum(1 for line in block[1] if line.strip()))[1]
        extra_imports = [
            line
            for _, body in blocks
            if body is not main and all(_IMPORT.match(line) or not line.strip() for line in body)
            for line in body
            if line.strip()
        ]
        return extra_imports + main
    header_token = header.split()[0] if header.split() else ""
    start = next(
        (
            index
            for index, line in enumerate(lines)
            if _CODE_START.match(line) or (header_token and line.strip().startswith(header_token))
        ),
        None,
    )
    if start is None:
        return None
    base = indent_width(indent_of(lines[start]))
    last = start
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        if indent_width(indent_of(line)) > base or _CLOSING.match(line) or _CODE_START.match(line):
            last = index
        else:
            break  # prose after the code
    return lines[start : last + 1]


def _strip_gutter(lines: list[str]) -> list[str]:
    code = [line for line in lines if line.strip()]
    if code and all(_GUTTER.match(line) for line in code):
        return [_GUTTER.sub("", line, count=1) for line in lines]
    return lines


_DEFINITION = re.compile(r"(?:async\s+def|def|class|function|fn|func)\s+(\w+)")


def _head(chunk: list[str], base: int) -> str:
    """The line that opens a chunk (after its decorators and comments)."""
    for line in chunk:
        stripped = line.strip()
        if stripped and indent_width(indent_of(line)) == base and not stripped.startswith(("@", "#")):
            return stripped
    return ""


def _drop_echoes(body: list[str], old_scope: list[str], outside: set[str]) -> list[str]:
    """Drop top-level chunks of the reply that repeat code from elsewhere in the file (a model
    echoing the whole file instead of the scope), keeping the target and anything new."""
    widths = [indent_width(indent_of(line)) for line in body if line.strip()]
    base = min(widths)
    chunks: list[list[str]] = []
    pending: list[str] = []  # decorators and comments belong to the chunk below them
    for line in body:
        stripped = line.strip()
        at_base = bool(stripped) and indent_width(indent_of(line)) == base and not _CLOSING.match(line)
        if at_base and stripped.startswith(("@", "#")):
            pending.append(line)
        elif at_base:
            chunks.append(pending + [line])
            pending = []
        elif chunks and not pending:
            chunks[-1].append(line)
        else:
            pending.append(line)
    if pending:
        chunks.append(pending)
    if len(chunks) <= 1:
        return body
    old_widths = [indent_width(indent_of(line)) for line in old_scope if line.strip()]
    target_head = _head(old_scope, min(old_widths)) if old_widths else ""
    target_name = _DEFINITION.match(target_head)

    def is_target(chunk: list[str]) -> bool:
        head = _head(chunk, base)
        if target_name:
            match = _DEFINITION.match(head)
            return bool(match) and match.group(1) == target_name.group(1)
        return head == target_head

    if not any(is_target(chunk) for chunk in chunks):
        return body
    inside = {line.strip() for line in old_scope}

    def is_echo(chunk: list[str]) -> bool:
        # A copy of code from outside the scope (a whole-file reply): never applied. A copy
        # with a different head is kept, and the structural check refuses it (a new definition,
        # or one shadowing the original).
        head = _head(chunk, base)
        return head in outside and head not in inside

    kept = [chunk for chunk in chunks if is_target(chunk) or not is_echo(chunk)]
    for chunk in chunks:
        if not is_target(chunk) and is_echo(chunk) and any(line.strip() not in outside for line in chunk if line.strip()):
            _log.warning(
                "the reply also rewrites `%s`, outside the target; only the target is applied", _head(chunk, base)[:60]
            )
    return [line for chunk in kept for line in chunk]


def _split_imports(lines: list[str]) -> tuple[list[str], list[str]]:
    """Leading import statements (multi-line ones joined) and the rest."""
    imports: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip():
            index += 1
            continue
        if not _IMPORT.match(line) or indent_of(line):
            break
        statement = line.rstrip()
        while (statement.count("(") > statement.count(")") or statement.endswith("\\")) and index + 1 < len(lines):
            index += 1
            statement += "\n" + lines[index].rstrip()
        imports.append(statement)
        index += 1
    return imports, lines[index:]


def _import_keys(statement: str) -> set[tuple[str, ...]] | None:
    """What a Python import statement binds, as comparable keys; None if it is not Python."""
    try:
        tree = ast.parse(statement.strip())
    except SyntaxError:
        return None
    keys: set[tuple[str, ...]] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            keys |= {("import", alias.name, alias.asname or "") for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            keys |= {("from", module, alias.name, alias.asname or "") for alias in node.names}
        else:
            return None
    return keys


def _render_import(keys: list[tuple[str, ...]]) -> str:
    if keys[0][0] == "import":
        return "import " + ", ".join(key[1] + (f" as {key[2]}" if key[2] else "") for key in keys)
    names = ", ".join(key[2] + (f" as {key[3]}" if key[3] else "") for key in keys)
    return f"from {keys[0][1]} import {names}"


def new_imports(text: str, statements: list[str], *, python: bool = False) -> list[str]:
    """The import lines to add: those statements (or the names of them) ``text`` does not
    already import. ``text`` must be the file *after* the rewrite (an import the rewrite moved
    out of the scope is no longer there); for Python, imports inside functions and classes bind
    nothing at module level and do not count."""
    existing_keys: set[tuple[str, ...]] = set()
    existing_text: set[str] = set()
    for statement in _import_statements(split_lines(text), module_level=python):
        existing_text.add(" ".join(statement.split()))
        existing_keys |= _import_keys(statement) or set()
    added: list[str] = []
    for statement in statements:
        keys = _import_keys(statement)
        if keys is None:
            if " ".join(statement.split()) not in existing_text:
                added.append(statement.strip())
            continue
        missing = [key for key in sorted(keys) if key not in existing_keys]
        if not missing:
            continue
        if len(missing) == len(keys):
            added.append(statement.strip())
            continue
        groups: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for key in missing:
            groups.setdefault(key[:2], []).append(key)
        added.extend(_render_import(group) for group in groups.values())
        existing_keys |= set(missing)
    return added


def _import_statements(lines: list[str], *, module_level: bool = False) -> list[str]:
    """Every import statement in the file (multi-line ones joined); with ``module_level``,
    only those not inside a (Python) function or class."""
    statements: list[str] = []
    index = 0
    bare = [content(line) for line in lines]
    definition_width: int | None = None  # inside a def/class whose header has this indentation
    while index < len(bare):
        line = bare[index]
        if module_level and line.strip() and not line.lstrip().startswith("#"):
            width = indent_width(indent_of(line))
            if definition_width is not None and width <= definition_width:
                definition_width = None
            if definition_width is None and _PY_DEFINITION.match(line):
                definition_width = width
        if _IMPORT.match(line) and definition_width is None:
            statement = line.strip()
            while (statement.count("(") > statement.count(")") or statement.endswith("\\")) and index + 1 < len(bare):
                index += 1
                statement += "\n" + bare[index].strip()
            statements.append(statement.replace("\\\n", " "))
        index += 1
    return statements


def _import_point(allowed: Sequence[LineRange], scope: LineRange) -> int | None:
    """Where new imports go: after the import block (an allowed range other than the scope),
    or at the insertion point an empty range ``(k, k - 1)`` marks."""
    for start, end in allowed:
        if end < start:
            return start
        if end < scope[0] or start > scope[1]:
            return end + 1
    return None


_DEFINER = re.compile(r"\b(?:def|class|fn|func|function|struct|enum|interface|trait|impl)\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)")


def _defined_name(header: str) -> str | None:
    """The name a scope's first line defines (``def average(`` -> ``average``), if it is plain."""
    found = _DEFINER.search(header)
    return found.group(1) if found else None


def rewrite_scope(
    old: str, reply: str, *, scope: LineRange, allowed: Sequence[LineRange], python: bool = False,
    definition: bool = True,
) -> str:
    """``old`` with the lines of ``scope`` (inclusive) replaced by the code in ``reply``.

    Statements the reply adds after the rewritten definition (example calls, prints, a
    ``__main__`` block) are dropped, with a log line: a fix or refactoring never adds
    module-level code. Definitions it adds are kept for the structural check to judge.
    ``definition=False``: ``scope`` is a plain line window (a next-edit region) that may hold
    several statements, so its name is not checked and nothing after it is dropped."""
    lines = split_lines(old)
    first, last = scope
    if not (0 <= first <= last < len(lines)):
        raise PatchRefused(f"the scope (lines {first + 1}-{last + 1}) is not inside the file")
    old_scope = [content(line) for line in lines[first : last + 1]]
    header = next((line for line in old_scope if line.strip()), "")
    code = _code_lines(reply, header.strip())
    if code is None or not any(line.strip() for line in code):
        raise PatchRefused("the reply holds no code")
    code = _strip_gutter([line.rstrip("\r") for line in code])
    if any(_IMPORT.match(line) and not indent_of(line) for line in old_scope):
        imports, body = [], code  # the scope holds imports itself: the reply replaces them as written
    else:
        imports, body = _split_imports(code)
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise PatchRefused("the reply holds imports but no code for the scope")
    name = _defined_name(header) if definition else None
    if name and not any(re.search(rf"\b{re.escape(name)}\b", line) for line in body):
        raise PatchRefused(f"the reply does not rewrite `{name}` (it defines something else)")

    outside = {content(line).strip() for line in lines[:first] + lines[last + 1 :] if line.strip()}
    body = _drop_echoes(body, old_scope, outside)
    _refuse_overrun(body, lines, last)
    if imports or not any(_IMPORT.match(line) and not indent_of(line) for line in old_scope):
        more_imports, body = _split_imports(body)  # imports that followed an echoed docstring
        imports += more_imports
    while body and not body[-1].strip():
        body.pop()
    if definition:
        body = _drop_trailing_statements(body, name, python)
    # Decorators the model copied from just above the scope are not part of the rewrite.
    leading = 0
    while leading < len(body) and body[leading].strip().startswith("@"):
        leading += 1
    above = [content(line).strip() for line in lines[max(0, first - leading) : first]]
    if leading and above == [line.strip() for line in body[:leading]]:
        body = body[leading:]
    # Keep decorators the model left out of its copy.
    old_decorators: list[str] = []
    for line in old_scope:
        if line.strip().startswith("@"):
            old_decorators.append(line)
        elif line.strip():
            break
    body = _reindent(body, header, old_scope, lines)
    if old_decorators and not body[0].strip().startswith("@"):
        body = old_decorators + body

    leading = next(index for index, line in enumerate(old_scope) if line.strip())
    trailing = next(index for index, line in enumerate(reversed(old_scope)) if line.strip())
    ending = dominant_ending(old)
    region = (
        lines[first : first + leading]
        + [line.rstrip() + ending if line.strip() else ending for line in body]
        + lines[last + 1 - trailing : last + 1]
    )
    if not line_ending(lines[last]):
        region[-1] = content(region[-1])  # the scope ended the file without a newline
    new_lines = lines[:first] + region + lines[last + 1 :]

    added = new_imports("".join(new_lines), imports, python=python)
    if added:
        point = _import_point(allowed, scope)
        if point is None:
            raise PatchRefused(f"the reply adds imports ({'; '.join(added)}), which this action may not do")
        insertion = [statement.replace("\n", ending) + ending for statement in added]
        if point > last:
            point += len(region) - (last + 1 - first)
        empty_region = any(end < start and start == point for start, end in allowed)
        if empty_region and point < len(new_lines) and new_lines[point].strip():
            insertion.append(ending)
        if point > 0 and not line_ending(new_lines[point - 1]):
            new_lines[point - 1] += ending
        new_lines[point:point] = insertion
    return "".join(new_lines)


def _refuse_overrun(body: list[str], lines: list[str], last: int) -> None:
    """Refuse a reply that goes on past the scope: it holds the code that follows the scope
    (three lines of it in a row), so the scope was too small for what the model rewrote (a
    window inside a long function, a broken function tree-sitter cut short) and the result
    would hold that code twice."""
    following: list[str] = []
    for line in lines[last + 1 : last + 40]:
        stripped = content(line).strip()
        if stripped:
            following.append(stripped)
            if len(following) == 3:
                break
    if len(following) < 3 or not any(sum(char.isalnum() for char in line) >= 8 for line in following):
        return
    code = [line.strip() for line in body if line.strip()]
    for index in range(len(code) - 2):
        if code[index : index + 3] == following:
            raise PatchRefused(
                f"the reply goes on past the lines it may rewrite (it repeats line {last + 2} onwards); "
                "refusing rather than duplicating code"
            )


def _drop_trailing_statements(body: list[str], name: str | None, python: bool) -> list[str]:
    """``body`` without the statements after its definition of ``name`` at the top level of
    the reply (blank lines or not in between); definitions there are kept."""
    if not name:
        return body
    widths = [indent_width(indent_of(line)) for line in body if line.strip()]
    if not widths:
        return body
    base = min(widths)
    heads = [
        index
        for index, line in enumerate(body)
        if line.strip() and indent_width(indent_of(line)) == base and not _CLOSING.match(line)
        and not line.strip().startswith(("@", "#", "//", "/*", "*", ")", "]", "}", "{"))
    ]
    if python:  # a line inside a triple-quoted string is no statement
        inside, quotes = set(), 0
        for index, line in enumerate(body):
            if quotes % 2:
                inside.add(index)
            quotes += line.count('"""') + line.count("\'\'\'")
        heads = [index for index in heads if index not in inside]
    target = next((index for index in heads if definition_name(body[index].strip(), python) == name), None)
    if target is None:
        return body
    later = [index for index in heads if index > target]
    if python:
        later = [index for index in later if not body[index - 1].rstrip().endswith(("\\", "(", "[", "{", ","))]
    else:
        # In braced languages the definition ends where its braces close.
        closed = brace_end(body, target)
        if closed is None:
            return body
        later = [index for index in later if index > closed]
    for index in later:
        if definition_name(body[index].strip(), python) is not None:
            continue  # a definition: kept, the structural check decides
        stop = next((other for other in later if other > index and definition_name(body[other].strip(), python)), len(body))
        dropped = [line for line in body[index:stop] if line.strip()]
        _log.warning(
            "the model added %d line(s) of top-level code after `%s` (%s); dropped them, kept the rewritten `%s`",
            len(dropped), name, dropped[0].strip()[:60], name,
        )
        kept = body[:index] + body[stop:]
        while kept and not kept[-1].strip():
            kept.pop()
        return _drop_trailing_statements(kept, name, python)
    return body


def _first_step(lines: list[str]) -> int | None:
    """How much deeper the first indented line after the header (the body) sits: one level."""
    widths = [indent_width(indent_of(line)) for line in lines if line.strip() and not line.strip().startswith("@")]
    if not widths:
        return None
    deeper = next((width for width in widths[1:] if width > widths[0]), None)
    return deeper - widths[0] if deeper is not None else None


def _reindent(body: list[str], header: str, old_scope: list[str], lines: list[str]) -> list[str]:
    """Shift (and if needed rescale) the reply's indentation to the scope's own."""
    model_header = next(line for line in body if line.strip())
    old_width, model_width = indent_width(indent_of(header)), indent_width(indent_of(model_header))
    file_lines = [content(line) for line in lines]
    tabs = uses_tabs(file_lines)
    model_unit = _first_step(body) or indent_unit(body)
    file_unit = _first_step(old_scope) or indent_unit(file_lines)
    body_tabs = any("\t" in indent_of(line) for line in body)
    body_spaces = any(" " in indent_of(line) for line in body)
    same_style = not (body_tabs if not tabs else body_spaces)
    if old_width == model_width and (model_unit == file_unit or not model_unit or not file_unit) and same_style:
        return body
    for unit in (model_unit, None):  # rescale only if every line maps cleanly
        mapping = fit_indent_map([(model_width, old_width)], unit, file_unit, tabs)
        if mapping is None:
            continue
        mapped = [mapping.apply(line) for line in body]
        if all(line is not None for line in mapped):
            return [line for line in mapped if line is not None]
    raise PatchRefused("the reply's indentation cannot be mapped onto the scope's")
