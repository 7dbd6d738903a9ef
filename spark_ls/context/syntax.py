"""Syntax errors: tree-sitter's ERROR and MISSING nodes as problems (CPython's parser for Python)."""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from spark_ls.context.analysis import node_text
from spark_ls.context.document import Snapshot

__all__ = ["SyntaxProblem", "syntax_errors"]


@dataclass(frozen=True)
class SyntaxProblem:
    start_line: int
    start_col: int  # code points
    end_line: int
    end_col: int
    message: str



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
    token = node_text(snap, leaf).splitlines()[0] if leaf.end_byte > leaf.start_byte else ""
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

