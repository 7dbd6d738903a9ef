"""Per-language fixtures: scopes, picked references, import regions and str offsets."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from spark_ls.context import (
    all_languages,
    all_scopes,
    enclosing_scope,
    language_for,
    pick_context,
    snapshot_of,
    syntax_errors,
)

FIXTURES = Path(__file__).parent / "fixtures" / "context"
EXPECTED = tomllib.loads((FIXTURES / "expected.toml").read_text(encoding="utf-8"))


def load(name: str):
    case = EXPECTED[name]
    path = FIXTURES / case["file"]
    language = language_for(path=str(path))
    assert language is not None and language.name == name
    return case, snapshot_of(path.read_text(encoding="utf-8"), language)


def test_every_builtin_language_has_a_fixture() -> None:
    assert {spec.name for spec in all_languages()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scopes_match_expectations(name: str) -> None:
    case, snap = load(name)
    assert syntax_errors(snap) == []
    found = [f"{s.kind} {s.qualname} {s.start_line + 1}-{s.end_line + 1}" for s in all_scopes(snap)]
    assert found == case["scopes"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_context_picks_referenced_definitions(name: str) -> None:
    case, snap = load(name)
    target = next(s for s in all_scopes(snap) if s.qualname == case["target"])
    line = target.start_line + 1
    assert enclosing_scope(snap, line, line) == target
    context = pick_context(snap, line, line, path=case["file"], budget_tokens=2000)
    assert context.target == target
    assert context.region == (target.start_line, target.end_line)
    others = {s.symbol for s in context.sections if s.role != "target"}
    assert set(case["picked"]) <= others
    assert not set(case["not_picked"]) & others
    start, end = case["import_region"]
    assert context.import_region == (start - 1, end - 1)
    assert context.sections[0].role == "target"
    assert f"{line + 1:>4} | " in context.prompt  # 1-based numbers as a user sees them


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scope_offsets_are_code_points_after_multibyte_text(name: str) -> None:
    case, snap = load(name)
    assert "é😀" in snap.text
    reset = next(s for s in all_scopes(snap) if s.qualname == case["reset"])
    # `reset` comes after the "é😀" line: byte offsets would be 4 too far.
    assert snap.text.index("é😀") < reset.start
    assert snap.text[reset.start : reset.end].endswith(case["reset_end"])
    assert snap.text[reset.start].isalpha() or snap.text[reset.start] in "@#"
    assert snap.offset_of_line(reset.start_line) <= reset.start < snap.offset_of_line(reset.start_line + 1)


@pytest.mark.parametrize(
    ("language_id", "source", "expected"),
    [
        ("javascript", "function f() {\n  return [1, 2;\n}\n", (1, 14, "syntax error: missing ']'")),
        ("go", "package a\n\nfunc f() {\n\tx := (1 + 2\n}\n", (3, 12, "syntax error: missing ')'")),
        ("rust", "fn f() -> i32 {\n    let x = 1\n    x\n}\n", (1, 13, "syntax error: missing ';'")),
        ("java", "class A {\n  void f() {\n    int x = 1\n  }\n}\n", (2, 13, "syntax error: missing ';'")),
        ("c", "int f(void) {\n    return 1\n}\n", (1, 12, "syntax error: missing ';'")),
        ("cpp", "int f() {\n    return g(1;\n}\n", (1, 14, "syntax error: missing ')'")),
        ("typescript", "const x: number = ;\n", (0, 16, "syntax error: unexpected '='")),
        # the error sits after a multi-byte string: columns are code points
        ("typescriptreact", 'const a = "é😀"; f(1 2);\n', (0, 20, "syntax error: unexpected '2'")),
    ],
)
def test_syntax_errors_per_language(language_id: str, source: str, expected: tuple[int, int, str]) -> None:
    snap = snapshot_of(source, language_for(language_id=language_id))
    [problem] = syntax_errors(snap)
    assert (problem.start_line, problem.start_col, problem.message) == expected
