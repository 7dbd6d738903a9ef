"""The quality benchmark's corpus: real functions, real single-mutation bugs, tests from behaviour.

Generated offline, deterministically, from the Python standard library installed with the
interpreter (PSF licence, permissive): each function below is copied verbatim from its module's
source (with the few module-level names it needs), run on hand-picked sample inputs, and its
observed results become the tests (one test per input). A mutant changes one thing in the
function — an arithmetic/boolean operator, a comparison, an integer constant by one, a variable
read for another, or a guarding ``if`` deleted (a missing case) — and is kept only if a test
catches it and it still terminates. QuixBugs is not used.

`python -m bench.quality_corpus OUT` writes the corpus (`cases/`, `tests/`, `corpus.json`).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import math
import random
import signal
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# (module, function, module-level code it needs, sample argument lists as call source)
FUNCTIONS: list[tuple[str, str, str, list[str]]] = [
    ("calendar", "isleap", "", ["1900", "2000", "2024", "2023", "1600", "2100", "4", "1"]),
    ("calendar", "leapdays", "", ["1900, 2000", "2000, 2024", "1, 401", "2024, 2025", "1999, 2001",
                                  "2000, 2000", "1896, 1905"]),
    ("bisect", "bisect_left", "", ["[1, 2, 2, 2, 3, 5, 8], 2", "[1, 2, 2, 2, 3, 5, 8], 0",
                                   "[1, 2, 2, 2, 3, 5, 8], 9", "[1, 2, 2, 2, 3, 5, 8], 4",
                                   "[1, 2, 2, 2, 3, 5, 8], 2, 4", "[1, 2, 2, 2, 3, 5, 8], 2, 0, 2", "[], 1",
                                   "[1, 2, 3], 1, -1", "[(1, 'a'), (3, 'b')], 2, key=lambda p: p[0]"]),
    ("bisect", "bisect_right", "", ["[1, 2, 2, 2, 3, 5, 8], 2", "[1, 2, 2, 2, 3, 5, 8], 0",
                                    "[1, 2, 2, 2, 3, 5, 8], 9", "[1, 2, 2, 2, 3, 5, 8], 4",
                                    "[1, 2, 2, 2, 3, 5, 8], 2, 4", "[1, 2, 2, 2, 3, 5, 8], 2, 0, 2", "[], 1",
                                    "[1, 2, 3], 1, -1", "[(1, 'a'), (3, 'b')], 3, key=lambda p: p[0]"]),
    ("colorsys", "rgb_to_yiq", "", ["0, 0, 0", "1, 1, 1", "1, 0, 0", "0.2, 0.4, 0.6", "0.9, 0.1, 0.5"]),
    ("colorsys", "yiq_to_rgb", "", ["0, 0, 0", "1, 0, 0", "0.5, 0.3, 0.1", "0.5, -0.3, 0.2", "0.2, 0.5, -0.5",
                                    "0.9, 0.6, 0.6", "0.1, -0.6, 0.6"]),
    ("colorsys", "rgb_to_hls", "", ["0, 0, 0", "1, 1, 1", "1, 0, 0", "0, 1, 0", "0, 0, 1", "0.2, 0.4, 0.6",
                                    "0.9, 0.8, 0.1", "0.5, 0.5, 0.5", "0.1, 0.2, 0.15", "0.9, 0.2, 0.7"]),
    ("colorsys", "rgb_to_hsv", "", ["0, 0, 0", "1, 1, 1", "1, 0, 0", "0, 1, 0", "0, 0, 1", "0.2, 0.4, 0.6",
                                    "0.9, 0.8, 0.1", "0.5, 0.5, 0.5", "0.1, 0.2, 0.15", "0.9, 0.2, 0.7"]),
    ("colorsys", "hsv_to_rgb", "", ["0, 0, 0.5", "0.05, 0.5, 0.8", "0.2, 0.5, 0.8", "0.4, 0.5, 0.8",
                                    "0.55, 0.5, 0.8", "0.7, 0.5, 0.8", "0.9, 0.5, 0.8", "1.0, 1, 1"]),
    ("colorsys", "_v", "ONE_THIRD = 1.0/3.0\nONE_SIXTH = 1.0/6.0\nTWO_THIRD = 2.0/3.0\n",
     ["0.2, 0.8, -0.1", "0.2, 0.8, 0.1", "0.2, 0.8, 0.3", "0.2, 0.8, 0.6", "0.2, 0.8, 0.9", "0.2, 0.8, 1.2"]),
    ("statistics", "median", "class StatisticsError(ValueError):\n    pass\n",
     ["[1, 3, 5]", "[1, 3, 5, 7]", "[5]", "[]", "[4, 1, 3, 2]", "[2.5, 1.5]"]),
    ("statistics", "median_low", "class StatisticsError(ValueError):\n    pass\n",
     ["[1, 3, 5]", "[1, 3, 5, 7]", "[]", "[7, 1]", "[9, 2, 5, 4]"]),
    ("statistics", "median_high", "class StatisticsError(ValueError):\n    pass\n",
     ["[1, 3, 5]", "[1, 3, 5, 7]", "[]", "[7, 1]", "[9, 2, 5, 4]"]),
    ("genericpath", "commonprefix", "import os\n",
     ["[]", "['abc', 'abd']", "['/usr/lib', '/usr/local']", "['x']", "['abc', 'xbc']", "[[1, 2, 3], [1, 2, 4]]",
      "['abc', 'ab']"]),
    ("genericpath", "_splitext", "", ["'foo.txt', '/', None, '.'", "'/a/b.c/d', '/', None, '.'",
                                      "'.bashrc', '/', None, '.'", "'a/.x.y', '/', None, '.'",
                                      "'a.b.c', '/', None, '.'", "'noext', '/', None, '.'",
                                      "'a\\\\b.c', '\\\\', '/', '.'", "'..', '/', None, '.'"]),
    ("textwrap", "indent", "", ["'a\\nb\\n', '> '", "'a\\n\\nb', '  '", "'x\\n  \\ny\\n', '# '",
                                "'a\\nb', '+', lambda line: True", "'', '> '"]),
    ("inspect", "cleandoc", "import sys\n", ["'  a\\n    b\\n  c'", "'\\n   x\\n   y\\n'", "'single'",
                                            "'\\tTab\\n\\tmore'", "''", "'first\\n\\n    second\\n      third'"]),
    ("difflib", "_calculate_ratio", "", ["3, 10", "0, 0", "5, 5", "0, 4", "7, 9"]),
    ("difflib", "_format_range_unified", "", ["0, 0", "0, 1", "3, 4", "3, 7", "5, 5", "1, 3"]),
    ("difflib", "_format_range_context", "", ["0, 0", "0, 1", "3, 4", "3, 7", "5, 5", "1, 3"]),
    ("datetime", "_days_before_year", "", ["1", "2", "5", "101", "401", "2024"]),
    ("datetime", "_is_leap", "", ["1900", "2000", "2024", "2023", "2100", "4"]),
    ("datetime", "_divide_and_round", "", ["7, 2", "-7, 2", "5, 2", "-5, 2", "6, 4", "7, -2", "1, 3", "10, 5",
                                           "3, 2"]),
    ("datetime", "_cmp", "", ["1, 2", "2, 1", "3, 3", "'a', 'b'"]),
    ("heapq", "_siftdown", "", ["[1, 3, 5, 0], 0, 3", "[2, 4, 6, 8, 1], 0, 4", "[5], 0, 0",
                                "[1, 2, 3, 4, 5, 6, 0], 0, 6", "[3, 5, 7, 4], 1, 3"]),
    ("html", "escape", "", ["'<a href=\"x\">&</a>'", "\"it's\"", "'plain'", "'<>', False", "'\"q\"', quote=False"]),
    ("string", "capwords", "", ["'hello world'", "'  many   spaces here '", "'a-b c-d', '-'", "''", "'ONE two'"]),
    ("ipaddress", "_count_righthand_zero_bits", "", ["0, 32", "1, 32", "8, 32", "12, 8", "1024, 8", "6, 32"]),
    ("operator", "indexOf", "", ["[1, 2, 3], 2", "'abc', 'c'", "[1, 2], 5", "[], 1", "[0, 0], 0"]),
    ("operator", "countOf", "", ["[1, 2, 2, 3], 2", "'banana', 'a'", "[], 1", "[1, 1.0, True], 1", "[0, 1], 2"]),
    ("urllib.request", "parse_http_list", "", ["'a, b, c'", "'a, \"b, c\", d'", "'x=\"1,2\", y'",
                                               "'\"esc\\\\\\\"aped\", z'", "''", "'single'"]),
    ("urllib.request", "parse_keqv_list", "", ["['a=1', 'b=\"2\"']", "['k=\"v\"']", "[]", "['x=\"\"']"]),
    ("unittest.util", "sorted_list_difference", "", ["[1, 2, 3], [1, 2, 3]", "[1, 2, 4], [2, 3, 4]", "[], [1]",
                                                     "[1, 1, 2], [2]", "[1, 3, 5, 7], [2, 3, 6]", "[4], []"]),
    ("unittest.util", "unorderable_list_difference", "", ["[1, 2, 3], [3, 2, 1]", "[1, 2, 2], [2, 3]",
                                                          "[[1], [2]], [[2], [3]]", "[], []", "[1], []"]),
    ("shlex", "quote", "import re\n_find_unsafe = re.compile(r'[^\\w@%+=:,./-]', re.ASCII).search\n",
     ["''", "'abc'", "'a b'", "\"it's\"", "'safe-_/.,:=+@%'"]),
    ("difflib", "_keep_original_ws", "", ["'a\\tb', '^ + '", "'  x', '  ^'", "'', ''"]),
]

HEADER = "# Copied from the Python {version} standard library ({module}.{name}); PSF licence.\n"


@dataclass
class Case:
    id: str  # also the module name under cases/
    function: str  # module.name it comes from
    name: str
    kind: str  # "original" or the mutation kind
    description: str
    tests: int
    failing: int  # tests the case fails as written (0 for originals)
    origin: str = ""  # the original case's id
    source: str = field(repr=False, default="")


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def plain(value: Any) -> Any:
    """``value`` if the test file can spell it (its repr is a literal), else its type's name: an
    argument such as a lambda has no literal (its repr broke the generated test's syntax)."""
    try:
        return value if ast.literal_eval(repr(value)) == value else type(value).__name__
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return type(value).__name__


def outcome(function: Any, args: tuple, kwargs: dict) -> Any:
    """What a call does: ("ok", result, arguments afterwards) or ("raises", exception name)."""
    try:
        result = function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the exception is the behaviour under test
        return ("raises", type(exc).__name__)
    return ("ok", result, [plain(a) for a in args])


def same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return type(x) is type(y) and len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    return type(x) is type(y) and x == y


def _behaviour(source: str, name: str, calls: list[str], limit: float = 0.5) -> list[Any] | None:
    """Outcomes of ``name`` in ``source`` on ``calls``; None when it does not load or hangs."""
    namespace: dict[str, Any] = {"__name__": "case"}
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, limit * len(calls) + limit)
        exec(compile(source, "<case>", "exec"), namespace)  # noqa: S102 - our own generated corpus
        function = namespace[name]
        results = []
        for call in calls:
            args, kwargs = eval(f"(lambda *a, **k: (a, k))({call})", {})
            results.append(outcome(function, args, kwargs))
        return results
    except (_Timeout, SyntaxError, RecursionError):
        return None
    except Exception:  # noqa: BLE001 - a mutant that does not even load is not a useful case
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def function_source(module_name: str, name: str) -> str:
    module = importlib.import_module(module_name)
    text = Path(inspect.getsourcefile(module) or "").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            segment = ast.get_source_segment(text, node)
            if segment:
                return segment + "\n"
    raise LookupError(f"{module_name}.{name} not found")


# ------------------------------------------------------------------ mutations

_BINOPS = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*"),
           ast.FloorDiv: ("//", "/"), ast.Mod: ("%", "//"), ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&"),
           ast.LShift: ("<<", ">>"), ast.RShift: (">>", "<<")}
_CMPOPS = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
           ast.Eq: ("==", "!="), ast.NotEq: ("!=", "==")}


@dataclass(frozen=True)
class Mutation:
    kind: str
    description: str
    start: int  # character offsets in the case source
    end: int
    replacement: str


def _offsets(source: str) -> list[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _pos(source: str, starts: list[int], line: int, col_bytes: int) -> int:
    line_text = source[starts[line - 1]:starts[line]]
    return starts[line - 1] + len(line_text.encode("utf-8")[:col_bytes].decode("utf-8"))


def mutations(source: str, function_name: str) -> Iterator[Mutation]:
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function_name)
    starts = _offsets(source)

    def span(node: ast.AST) -> tuple[int, int]:
        return (_pos(source, starts, node.lineno, node.col_offset),  # type: ignore[attr-defined]
                _pos(source, starts, node.end_lineno, node.end_col_offset))  # type: ignore[attr-defined]

    def operator_between(left: ast.AST, right: ast.AST, token: str) -> int | None:
        gap_start, gap_end = span(left)[1], span(right)[0]
        index = source.find(token, gap_start, gap_end)
        return index if index >= 0 else None

    docstring = ast.get_docstring(func, clean=False)
    body = func.body[1:] if docstring is not None else func.body
    locals_: set[str] = {a.arg for a in func.args.args + func.args.kwonlyargs}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            locals_.add(node.id)
    nodes = [n for stmt in body for n in ast.walk(stmt)]
    line_of = lambda n: source.splitlines()[n.lineno - 1].strip()
    for node in nodes:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            old, new = _BINOPS[type(node.op)]
            at = operator_between(node.left, node.right, old)
            if at is not None:
                yield Mutation("operator", f"`{old}` -> `{new}` in `{line_of(node)}`", at, at + len(old), new)
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOPS:
            old, new = _BINOPS[type(node.op)]
            at = operator_between(node.target, node.value, old + "=")
            if at is not None:
                yield Mutation("operator", f"`{old}=` -> `{new}=` in `{line_of(node)}`", at, at + len(old), new)
        elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
            old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
            at = operator_between(node.values[0], node.values[1], old)
            if at is not None:
                yield Mutation("operator", f"`{old}` -> `{new}` in `{line_of(node)}`", at, at + len(old), new)
        elif isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                if type(op) in _CMPOPS:
                    old, new = _CMPOPS[type(op)]
                    at = operator_between(left, right, old)
                    if at is not None:
                        yield Mutation("comparison", f"`{old}` -> `{new}` in `{line_of(node)}`",
                                       at, at + len(old), new)
                left = right
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            start, end = span(node)
            if source[start:end].isdigit():
                for delta in (1, -1):
                    value = node.value + delta
                    if value >= 0:
                        yield Mutation("off-by-one", f"`{node.value}` -> `{value}` in `{line_of(node)}`",
                                       start, end, str(value))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in locals_:
            start, end = span(node)
            for other in sorted(locals_ - {node.id}):
                yield Mutation("wrong-variable", f"`{node.id}` -> `{other}` in `{line_of(node)}`",
                               start, end, other)
    for block in [body] + [getattr(n, attr) for n in nodes for attr in ("body", "orelse")
                           if isinstance(getattr(n, attr, None), list)]:
        if len(block) < 2:
            continue
        for stmt in block:
            if isinstance(stmt, ast.If) and not stmt.orelse and isinstance(
                stmt.body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break)
            ):
                start = starts[stmt.lineno - 1]
                end = starts[stmt.end_lineno]  # type: ignore[index]
                yield Mutation("missing-case", f"deleted `{line_of(stmt)}`", start, end, "")


def apply_mutation(source: str, mutation: Mutation) -> str:
    return source[: mutation.start] + mutation.replacement + source[mutation.end :]


# ------------------------------------------------------------------ the corpus

KIND_ORDER = ("comparison", "off-by-one", "operator", "missing-case", "wrong-variable")


def build(mutants_per_function: int = 2, functions: list[tuple[str, str, str, list[str]]] | None = None
          ) -> tuple[list[Case], list[Case], dict[str, list[str]]]:
    """(originals, mutants, calls by case id)."""
    originals: list[Case] = []
    mutants: list[Case] = []
    calls_by_id: dict[str, list[str]] = {}
    version = ".".join(map(str, sys.version_info[:3]))
    for module_name, name, preamble, calls in functions or FUNCTIONS:
        body = function_source(module_name, name)
        header = HEADER.format(version=version, module=module_name, name=name)
        source = header + (preamble + "\n\n" if preamble else "") + body
        expected = _behaviour(source, name, calls)
        if expected is None:
            raise RuntimeError(f"{module_name}.{name}: the original does not run on its samples")
        case_id = f"{module_name.replace('.', '_')}_{name.strip('_')}"
        calls_by_id[case_id] = calls
        originals.append(Case(case_id, f"{module_name}.{name}", name, "original", "unchanged",
                              len(calls), 0, case_id, source))
        rng = random.Random(f"spark-ls quality corpus {module_name}.{name}")
        by_kind: dict[str, list[Mutation]] = {}
        for mutation in mutations(source, name):
            by_kind.setdefault(mutation.kind, []).append(mutation)
        kinds = [k for k in KIND_ORDER if k in by_kind]
        rng.shuffle(kinds)
        picked = 0
        for kind in kinds:
            if picked == mutants_per_function:
                break
            candidates = by_kind[kind]
            rng.shuffle(candidates)
            for mutation in candidates:  # the first candidate (in seeded order) a test catches
                mutated = apply_mutation(source, mutation)
                got = _behaviour(mutated, name, calls, limit=0.05)
                if got is None or mutated == source:
                    continue
                failing = sum(not same(a, b) for a, b in zip(got, expected))
                if failing:
                    mutant_id = case_id if picked == 0 else f"{case_id}_{picked + 1}"
                    calls_by_id[mutant_id] = calls
                    mutants.append(Case(mutant_id, f"{module_name}.{name}", name, kind, mutation.description,
                                        len(calls), failing, case_id, mutated))
                    picked += 1
                    break
    return originals, mutants, calls_by_id


TEST_TEMPLATE = '''\
"""Tests for cases/{id}.py: the original function's observed behaviour on sample inputs."""

import ast
import math

from cases.{id} import {name} as target


def _plain(value):
    try:
        return value if ast.literal_eval(repr(value)) == value else type(value).__name__
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return type(value).__name__


def _call(*args, **kwargs):
    try:
        result = target(*args, **kwargs)
    except Exception as exc:
        return ("raises", type(exc).__name__)
    return ("ok", result, [_plain(a) for a in args])


def _same(x, y):
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return type(x) is type(y) and len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return type(x) is type(y) and x == y
'''


def test_source(case: Case, calls: list[str], expected: list[Any]) -> str:
    parts = [TEST_TEMPLATE.format(id=case.id, name=case.name)]
    for index, (call, want) in enumerate(zip(calls, expected)):
        parts.append(f"\n\ndef test_{index}():\n    got = _call({call})\n"
                     f"    assert _same(got, {want!r}), got\n")
    return "".join(parts)


def write(out: Path, cases: list[Case], calls_by_id: dict[str, list[str]], originals: dict[str, Case]) -> None:
    """One repository layout: cases/<id>.py, tests/test_<id>.py, corpus.json."""
    (out / "cases").mkdir(parents=True, exist_ok=True)
    (out / "tests").mkdir(parents=True, exist_ok=True)
    (out / "cases" / "__init__.py").write_text("")
    (out / "tests" / "__init__.py").write_text("")
    for case in cases:
        original = originals[case.origin]
        calls = calls_by_id[case.id]
        expected = _behaviour(original.source, original.name, calls)
        assert expected is not None
        (out / "cases" / f"{case.id}.py").write_text(case.source, encoding="utf-8")
        (out / "tests" / f"test_{case.id}.py").write_text(test_source(case, calls, expected), encoding="utf-8")
    (out / "corpus.json").write_text(json.dumps([{k: v for k, v in asdict(c).items() if k != "source"}
                                                 for c in cases], indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "quality-corpus")
    originals, mutants, calls = build()
    by_id = {c.id: c for c in originals}
    write(out / "originals", originals, calls, by_id)
    write(out / "mutants", mutants, calls, by_id)
    kinds: dict[str, int] = {}
    for m in mutants:
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    print(f"{len(originals)} originals, {len(mutants)} mutants {kinds} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
