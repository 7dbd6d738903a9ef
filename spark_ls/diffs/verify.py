"""Refuse edits that make the syntax worse.

With a language, old and new are parsed with tree-sitter (the new text incrementally from the
old tree); more ERROR/MISSING nodes in the new tree means the edit broke something. tree-sitter's
Python grammar accepts inconsistent indentation, so for Python the top-level block around the
change is also compiled, and an indentation error the old block did not have is refused too.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from spark_ls.diffs.edits import changed_span
from spark_ls.diffs.errors import PatchRefused

if TYPE_CHECKING:
    import tree_sitter


class ParserSource(Protocol):
    """What verification needs from ``spark_ls.context.languages.LanguageSpec``."""

    name: str

    def parser(self) -> tree_sitter.Parser | None: ...


_lock = threading.Lock()
_local = threading.local()  # a tree-sitter Parser must not be shared between threads
_trees: OrderedDict[tuple[int, str], tree_sitter.Tree] = OrderedDict()  # recent old texts' trees
_TREE_CACHE_SIZE = 4


def _parser_for(language: ParserSource) -> tree_sitter.Parser | None:
    parsers: dict[int, tuple[ParserSource, tree_sitter.Parser | None]] = _local.__dict__.setdefault("parsers", {})
    cached = parsers.get(id(language))
    if cached is not None and cached[0] is language:
        return cached[1]
    parser = language.parser()
    parsers[id(language)] = (language, parser)
    return parser


def forget_trees() -> None:
    """Empty the cache of parsed old texts."""
    with _lock:
        _trees.clear()


def _old_tree(language: ParserSource, parser: tree_sitter.Parser, old: str) -> tree_sitter.Tree:
    key = (id(language), old)
    with _lock:
        tree = _trees.get(key)
        if tree is not None:
            _trees.move_to_end(key)
            return tree
    tree = parser.parse(old.encode("utf-8"))
    with _lock:
        _trees[key] = tree
        while len(_trees) > _TREE_CACHE_SIZE:
            _trees.popitem(last=False)
    return tree


def _point(text: str, offset: int) -> tuple[int, tuple[int, int]]:
    """UTF-8 byte offset and tree-sitter point (rows count ``\\n`` only, columns in bytes)."""
    row = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    column = len(text[line_start:offset].encode("utf-8"))
    return len(text[:line_start].encode("utf-8")) + column, (row, column)


def error_nodes(tree: tree_sitter.Tree) -> list[tree_sitter.Node]:
    """ERROR and MISSING nodes, in document order."""
    found: list[tree_sitter.Node] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            found.append(node)
        if node.has_error:
            stack.extend(child for child in reversed(node.children) if child.has_error or child.is_missing)
    return found


def parse_new(
    old: str, new: str, parser: tree_sitter.Parser, old_tree: tree_sitter.Tree
) -> tree_sitter.Tree:
    """Parse ``new`` reusing ``old_tree`` (which is left untouched)."""
    start, old_end, new_end = changed_span(old, new)
    start_byte, start_point = _point(old, start)
    old_end_byte, old_end_point = _point(old, old_end)
    new_end_byte, new_end_point = _point(new, new_end)
    tree = old_tree.copy()
    tree.edit(
        start_byte=start_byte,
        old_end_byte=old_end_byte,
        new_end_byte=new_end_byte,
        start_point=start_point,
        old_end_point=old_end_point,
        new_end_point=new_end_point,
    )
    return parser.parse(new.encode("utf-8"), tree)


def _block_around_change(old: str, new: str) -> tuple[int, int, int]:
    """(begin, old_stop, new_stop): the top-level statements around the change, as str offsets;
    ``old[begin:old_stop]`` became ``new[begin:new_stop]``."""
    start, old_end, new_end = changed_span(old, new)
    begin = _statement_start(old, start)
    old_stop = _next_statement(old, old_end)
    return begin, old_stop, new_end + (old_stop - old_end)  # the texts agree after the change


def _block_parses_clean(
    old: str, new: str, block: tuple[int, int, int], parser: tree_sitter.Parser, tree_old: tree_sitter.Tree
) -> bool:
    """Fast path: the block is whole top-level nodes of the old tree, and both versions of it
    parse without any error on their own. Then the file as a whole cannot have gained errors
    (the parser is at module level at both ends of the block)."""
    begin, old_stop, new_stop = block
    begin_byte = len(old[:begin].encode("utf-8"))
    old_block = old[begin:old_stop].encode("utf-8")
    root = tree_old.root_node
    for boundary in (begin_byte, begin_byte + len(old_block)):
        if 0 < boundary < root.end_byte:
            child = root.first_child_for_byte(boundary)
            if child is None or child.start_byte != boundary:
                return False
    if error_nodes(parser.parse(new[begin:new_stop].encode("utf-8"))):
        return False  # (checked first: a new block with errors needs the whole-file check anyway)
    return not error_nodes(parser.parse(old_block))


def is_python(language: ParserSource | None, path: str = "") -> bool:
    if language is not None:
        return getattr(language, "name", "") == "python"
    return path.endswith((".py", ".pyi"))


def old_tree_source(
    language: ParserSource | None, old: str, old_tree: tree_sitter.Tree | None
) -> Callable[[], tree_sitter.Tree | None]:
    """A lazy getter for ``old``'s tree (the given one, else a cached parse)."""

    def get() -> tree_sitter.Tree | None:
        if old_tree is not None:
            return old_tree
        parser = _parser_for(language) if language is not None else None
        return _old_tree(language, parser, old) if parser is not None and language is not None else None

    return get


def new_tree_source(
    language: ParserSource | None, old: str, new: str, old_tree: tree_sitter.Tree | None
) -> Callable[[], tree_sitter.Tree | None]:
    """A lazy getter for ``new``'s tree (an incremental parse from ``old``'s)."""

    def get() -> tree_sitter.Tree | None:
        parser = _parser_for(language) if language is not None else None
        if parser is None or language is None:
            return None
        base = old_tree if old_tree is not None else _old_tree(language, parser, old)
        return parse_new(old, new, parser, base)

    return get


def verify_syntax(
    old: str,
    new: str,
    language: ParserSource | None,
    *,
    old_tree: tree_sitter.Tree | None = None,
    path: str = "<edit>",
) -> None:
    """Raise PatchRefused if ``new`` has more syntax errors than ``old``. ``old_tree`` (the
    document's current tree for ``old``, e.g. ``Snapshot.tree``) saves a full parse.

    For Python, the top-level statements around the change are also compiled when the old ones
    compile: the compiler catches what a parser accepts (``return`` or ``yield`` outside a
    function, ``break`` outside a loop, bad indentation)."""
    if language is None or old == new:
        return
    block = _block_around_change(old, new)
    parser = _parser_for(language)
    if parser is not None:
        tree_old = old_tree if old_tree is not None else _old_tree(language, parser, old)
        # The block-local fast path is only sound in a file that parses clean: in a file that is
        # already broken, a block that parses on its own can still add errors around it.
        if tree_old.root_node.has_error or not _block_parses_clean(old, new, block, parser, tree_old):
            tree_new = parse_new(old, new, parser, tree_old)
            before = error_nodes(tree_old)
            after = error_nodes(tree_new)
            if len(after) > len(before):
                first_changed = new.count("\n", 0, changed_span(old, new)[0])
                culprit = next((node for node in after if node.end_point[0] >= first_changed), after[0])
                raise PatchRefused(f"the edit introduces a syntax error at line {culprit.start_point[0] + 1}")
    if getattr(language, "name", "") == "python":
        _check_python_compiles(old, new, block, path)


# A top-level line that starts a statement (not a comment, a continuation or a clause of the
# statement above it).
_CLAUSE = re.compile(r"(else|elif|except|finally|case)\b|[)\]}]")


def _starts_statement(line: str) -> bool:
    return bool(line) and not line[0].isspace() and line[0] != "#" and not _CLAUSE.match(line)


def _compiles(source: str, path: str) -> SyntaxError | None:
    """The compiler's verdict on ``source`` (None: it compiles). Warnings are not errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError are SyntaxErrors
        return exc
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, absurd nesting: no judgement
        return SyntaxError("cannot compile")
    return None


def _check_python_compiles(old: str, new: str, block: tuple[int, int, int], path: str) -> None:
    begin, old_stop, new_stop = block
    old_block, new_block = old[begin:old_stop], new[begin:new_stop]
    error = _compiles(new_block, path)
    if error is None:
        return  # (then the old block's verdict does not matter: one compile, not two)
    if _compiles(old_block, path) is not None:
        return  # the old code does not compile on its own (or needs a newer Python): no judgement
    # The block is judged alone for speed; a string or bracket that spans its boundary can make
    # it fail on its own while the file is fine, so a failure is confirmed on the whole file.
    if _compiles(new, path) is None:
        return
    line = new.count("\n", 0, begin) + (error.lineno or 1)
    what = "an indentation error" if isinstance(error, IndentationError) else "a compile error"
    detail = f": {error.msg}" if getattr(error, "msg", None) else ""
    raise PatchRefused(f"the edit introduces {what} at line {line}{detail}")


def _statement_start(text: str, offset: int) -> int:
    """Offset of the last top-level statement line starting at or before ``offset``."""
    position = text.rfind("\n", 0, offset) + 1 if offset < len(text) or not text.endswith("\n") else offset
    while position > 0:
        end = text.find("\n", position)
        if _starts_statement(text[position : len(text) if end < 0 else end]):
            break
        position = text.rfind("\n", 0, position - 1) + 1
    while position > 0:  # decorators belong to the definition below them
        previous = text.rfind("\n", 0, position - 1) + 1
        if not text.startswith("@", previous):
            break
        position = previous
    return position


def _next_statement(text: str, offset: int) -> int:
    """Offset of the first top-level statement line starting at or after ``offset``."""
    position = offset
    while position < len(text):
        end = text.find("\n", position)
        line = text[position : len(text) if end < 0 else end]
        if _starts_statement(line):
            return position
        if end < 0:
            break
        position = end + 1
    return len(text)
