"""The trust property on hostile model replies: every result equals the old text or differs
only inside the target's lines (never a neighbour, never a new definition next to it), and
well-formed replies still apply (an engine that refuses everything fails here).

The corpus is bench/bench_trust.py's (``python -m bench trust`` runs it at full size): real
files found on this machine (the Python standard library at least) plus generated modules
drawn by hypothesis (fixed seed in CI, see conftest.py)."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_trust import cases_for, corpus, run_case, targets_in_text


@pytest.fixture(autouse=True, scope="module")
def _quiet_diffs_log() -> Iterator[None]:  # dropped extras are logged per reply; the level is restored for the next module
    log = logging.getLogger("spark_ls.diffs")
    level = log.level
    log.setLevel(logging.ERROR)
    yield
    log.setLevel(level)


def _tally(cases) -> tuple[Counter[tuple[bool, str]], list[str]]:
    counts: Counter[tuple[bool, str]] = Counter()
    wrong: list[str] = []
    for case in cases:
        outcome, detail = run_case(case)
        counts[(case.hostile, outcome)] += 1
        if outcome in ("wrong", "mangled"):
            wrong.append(f"{case.target.path}:{case.target.region[0] + 1} {case.target.name}: {case.kind}: {detail}")
    return counts, wrong


def test_real_code_sample_has_no_wrong_edit_and_well_formed_replies_apply() -> None:
    counts, wrong = _tally(corpus(files_per_language=3, targets_per_file=2, seed=3))
    hostile = sum(v for (h, _), v in counts.items() if h)
    good = sum(v for (h, _), v in counts.items() if not h)
    assert hostile >= 150 and good >= 30, counts  # the Python standard library alone gives this much
    assert wrong == []
    assert counts[(True, "refused")] > 0 and counts[(True, "applied")] > 0  # both outcomes happen
    assert counts[(False, "applied")] / good >= 0.99, counts


STATEMENTS = ["x = 1", "y = x + 2", "return x", "print(x)", "total += x", "if x:\n    y = 1",
              "for i in range(3):\n    x += i", 's = """\ntext at column 0\n"""', "data = [\n    1,\n    2,\n]"]


@st.composite
def modules(draw: st.DrawFn) -> str:
    """A module of functions (some decorated, some in a class) with imports and constants."""
    out = ["import os", "", "LIMIT = 10", ""]
    names = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "eps", "zeta"]), min_size=2,
                          max_size=5, unique=True))
    in_class = draw(st.booleans())
    indent = "    " if in_class else ""
    if in_class:
        out += ["class Box:", '    """A box."""', ""]
    for name in names:
        if draw(st.booleans()):
            out.append(f"{indent}@staticmethod" if in_class else "@cache")
        out.append(f"{indent}def {name}(x):")
        for statement in draw(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=4)):
            out += [f"{indent}    {part}" if part.strip() and not part.startswith("text at") else part
                    for part in statement.split("\n")]
        out += [f"{indent}    return x", ""]
        if draw(st.booleans()):
            out.append("")
    return "\n".join(out) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules(), st.integers(0, 10_000))
def test_generated_modules_no_wrong_edit(text: str, seed: int) -> None:
    rng = random.Random(seed)
    targets = targets_in_text(text, "gen/module.py", 1, rng)
    if not targets:
        return
    counts, wrong = _tally(cases_for(targets[0], rng))
    assert wrong == []
    good = sum(v for (h, _), v in counts.items() if not h)
    assert counts[(False, "applied")] == good, counts


@pytest.mark.parametrize("language, source", [
    ("c", ("int add(int a, int b) {\n    return a + b;\n}\n\nint sub(int a, int b) {\n    return a - b;\n}\n\n"
           "static int twice(int a) {\n    return 2 * a;\n}\n")),
    ("go", "package main\n\nfunc Add(a, b int) int {\n\treturn a + b\n}\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}\n"),
    ("rust", "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\nfn sub(a: i32, b: i32) -> i32 {\n    a - b\n}\n"),
    ("javascript", ("function add(a, b) {\n  return a + b;\n}\n\nconst sub = (a, b) => {\n  return a - b;\n};\n\n"
                    "function mul(a, b) {\n  return a * b;\n}\n")),
    ("java", ("class M {\n    int add(int a, int b) {\n        return a + b;\n    }\n\n    int sub(int a, int b) {\n"
              "        return a - b;\n    }\n}\n")),
])
def test_braced_languages_no_wrong_edit(language: str, source: str) -> None:
    extension = {"c": "c", "go": "go", "rust": "rs", "javascript": "js", "java": "java"}[language]
    rng = random.Random(5)
    targets = targets_in_text(source, f"src/m.{extension}", 5, rng)
    assert targets, "no function found"
    for target in targets:
        counts, wrong = _tally(cases_for(target, rng))
        assert wrong == []
        good = sum(v for (h, _), v in counts.items() if not h)
        assert good and counts[(False, "applied")] == good, counts
