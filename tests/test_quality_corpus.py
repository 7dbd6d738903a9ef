"""The quality benchmark's corpus (bench/quality_corpus.py): generated offline and deterministically
from the standard library; every original passes its tests, every mutant fails some of them."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

from bench import quality_corpus as corpus

SOME = corpus.FUNCTIONS[::5]


def test_generation_is_deterministic_and_every_mutant_is_caught() -> None:
    first = corpus.build(2, SOME)
    second = corpus.build(2, SOME)
    assert [(c.id, c.source) for c in first[1]] == [(c.id, c.source) for c in second[1]]
    originals, mutants, _ = first
    assert len(originals) == len(SOME) and len(mutants) >= len(SOME)
    by_id = {c.id: c for c in originals}
    for mutant in mutants:
        original = by_id[mutant.origin]
        assert mutant.source != original.source
        assert 0 < mutant.failing <= mutant.tests
        assert mutant.kind in corpus.KIND_ORDER
        # One change: the line diff is one hunk (one line changed, or one `if` block deleted).
        hunks = [line for line in difflib.unified_diff(original.source.splitlines(), mutant.source.splitlines(),
                                                       n=0, lineterm="") if line.startswith("@@")]
        assert len(hunks) == 1, (mutant.id, hunks)


def test_written_repository_tests_pass_on_originals_and_fail_on_mutants(tmp_path: Path) -> None:
    originals, mutants, calls = corpus.build(1, SOME[:3])
    by_id = {c.id: c for c in originals}
    for name, cases in (("originals", originals), ("mutants", mutants)):
        corpus.write(tmp_path / name, cases, calls, by_id)
        for case in cases:
            out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  f"tests/test_{case.id}.py"], cwd=tmp_path / name, capture_output=True, text=True, check=False)
            if name == "originals":
                assert out.returncode == 0, out.stdout
            else:
                assert f"{case.failing} failed" in out.stdout, (case.id, out.stdout)


def test_mutation_kinds_cover_the_issue_list() -> None:
    source = ("def f(xs, n):\n    total = 0\n    for i in range(1, n):\n        if xs[i] < 0:\n"
              "            continue\n        total += xs[i] * 2\n    return total\n")
    kinds = {m.kind for m in corpus.mutations(source, "f")}
    assert kinds == {"operator", "comparison", "off-by-one", "wrong-variable", "missing-case"}


def test_no_quixbugs() -> None:
    text = (Path(corpus.__file__).read_text() + Path(corpus.__file__).with_name("bench_quality.py").read_text())
    assert "quixbugs" not in text.lower().replace("quixbugs is not used", "").replace("not quixbugs", "")


def test_every_written_test_file_compiles_and_originals_pass(tmp_path: Path) -> None:
    # A sample argument without a literal (a lambda) once made a test file a SyntaxError: the case
    # then "failed" the same way before and after any proposal, and --verify could not tell.
    originals, mutants, calls = corpus.build(2)
    by_id = {c.id: c for c in originals}
    for name, cases in (("originals", originals), ("mutants", mutants)):
        corpus.write(tmp_path / name, cases, calls, by_id)
        for path in sorted((tmp_path / name / "tests").glob("test_*.py")):
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
    lambdas = [c.id for c in originals if "lambda" in " ".join(calls[c.id])]
    assert lambdas  # the corpus has such arguments (bisect's key=, textwrap.indent's predicate)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          *[f"tests/test_{i}.py" for i in lambdas]], cwd=tmp_path / "originals",
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-2000:]
