"""Registry, documents, snapshots, scopes, syntax errors and the context picker."""

from __future__ import annotations

import logging
import shutil
from importlib.resources import as_file, files
from pathlib import Path

import pytest

from spark_ls.context import (
    SourceDocument,
    all_languages,
    all_scopes,
    enclosing_scope,
    estimate_tokens,
    language_for,
    pick_context,
    reload_languages,
    snapshot_of,
    syntax_errors,
)
from spark_ls.context.languages import GRAMMARS_ENV, LanguageSpec
from spark_ls.context.picker import FALLBACK_WINDOW_LINES

FIXTURES = Path(__file__).parent / "fixtures" / "context"
PY = language_for(language_id="python")


def py_snap(text: str):
    return snapshot_of(text, PY)


# --- registry -------------------------------------------------------------------------------


def test_nine_builtin_languages() -> None:
    names = {spec.name for spec in all_languages()}
    assert names == {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"}
    assert all(spec.parser() is not None for spec in all_languages())


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"language_id": "typescriptreact"}, "tsx"),
        ({"path": "src/App.tsx"}, "tsx"),
        ({"path": "src/app.ts"}, "typescript"),
        ({"path": "lib/x.h"}, "c"),
        ({"path": "lib/X.HPP"}, "cpp"),
        ({"language_id": "javascriptreact"}, "javascript"),
        ({"language_id": "unknown-id", "path": "main.go"}, "go"),
        ({"path": "README.md"}, None),
    ],
)
def test_language_for(kwargs: dict, expected: str | None) -> None:
    spec = language_for(**kwargs)
    assert (spec.name if spec else None) == expected


def _copy_python_as(root: Path, name: str, extension: str, grammar: str | None = None) -> None:
    with as_file(files("spark_ls_grammars") / "python") as source:
        shutil.copytree(source, root / name)
    manifest = (root / name / "manifest.toml").read_text()
    manifest = manifest.replace('name = "python"', f'name = "{name}"')
    manifest = manifest.replace('[".py", ".pyi", ".pyw"]', f'["{extension}"]')
    manifest = manifest.replace('language_ids = ["python"]', f'language_ids = ["{name}"]')
    if grammar:
        manifest = manifest.replace('"tree_sitter_python:language"', f'"{grammar}"')
    (root / name / "manifest.toml").write_text(manifest)


def test_new_language_folder_from_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_python_as(tmp_path, "snake", ".snk")
    assert language_for(path="a.snk") is None
    monkeypatch.setenv(GRAMMARS_ENV, str(tmp_path))
    spec = language_for(path="a.snk")
    assert spec is not None and spec.name == "snake"
    assert language_for(language_id="snake") is spec
    snap = snapshot_of("class A:\n    def f(self):\n        return 1\n", spec)
    assert [(s.kind, s.qualname) for s in all_scopes(snap)] == [("class", "A"), ("method", "A.f")]
    assert len(all_languages()) == 10


def test_new_language_folder_from_parameter(tmp_path: Path) -> None:
    _copy_python_as(tmp_path, "viper", ".vpr")
    spec = language_for(path="x.vpr", extra_dirs=[tmp_path])
    assert spec is not None and spec.name == "viper"
    assert spec.parser() is not None


def test_missing_grammar_wheel_falls_back_to_line_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _copy_python_as(tmp_path, "ghost", ".ghost", grammar="no_such_grammar_module_xyz:language")
    reload_languages()
    spec = language_for(path="a.ghost", extra_dirs=[tmp_path])
    assert isinstance(spec, LanguageSpec)
    with caplog.at_level(logging.INFO, logger="spark_ls.context.languages"):
        assert spec.parser() is None
        assert spec.parser() is None
        document = SourceDocument("x = 1\n" * 100, spec)
    notes = [r for r in caplog.records if "ghost" in r.getMessage()]
    assert len(notes) == 1  # logged once, not per call
    assert document.tree is None
    document.apply_change(0, 1, "y")
    snap = document.snapshot()
    assert snap.text.startswith("y = 1\n") and snap.tree is None
    assert all_scopes(snap) == [] and syntax_errors(snap) == []
    context = pick_context(snap, 50, 50, path="a.ghost", budget_tokens=5000)
    assert context.target is None
    assert context.region == (50 - FALLBACK_WINDOW_LINES, 50 + FALLBACK_WINDOW_LINES)
    assert context.import_region is None
    assert [s.role for s in context.sections] == ["target"]
    assert "  51 | x = 1" in context.prompt


# --- documents and snapshots ----------------------------------------------------------------


def test_snapshot_is_isolated_from_later_edits() -> None:
    text = "def f():\n    return 1\n\n\ndef g():\n    return 2\n"
    document = SourceDocument(text, PY)
    snap = document.snapshot()
    tree_before = str(snap.tree.root_node)
    ranges_before = [(c.type, c.start_byte, c.end_byte) for c in snap.tree.root_node.children]
    scopes_before = all_scopes(snap)
    document.apply_change(0, 0, "import os\n\n\nclass K:\n    pass\n\n\n")
    document.apply_change(len(document.text) - 2, len(document.text), "3\n")
    assert snap.text == text
    assert str(snap.tree.root_node) == tree_before
    assert [(c.type, c.start_byte, c.end_byte) for c in snap.tree.root_node.children] == ranges_before
    assert all_scopes(snap) == scopes_before
    assert all_scopes(document.snapshot())[0].name == "K"
    assert document.snapshot() is document.snapshot()  # unchanged document: one snapshot
    assert document.snapshot() is not snap


def test_snapshot_lines_and_offsets_with_crlf_and_emoji() -> None:
    text = "a = '😀'\r\ndef f():\r\n    return 1\r\n"
    snap = py_snap(text)
    assert snap.lines == ["a = '😀'\r\n", "def f():\r\n", "    return 1\r\n"]
    assert snap.offset_of_line(1) == len("a = '😀'\r\n")
    assert snap.offset_of_line(3) == len(text)
    [scope] = all_scopes(snap)
    assert (scope.start_line, scope.end_line) == (1, 2)
    assert text[scope.start : scope.end] == "def f():\r\n    return 1"


def test_apply_change_rejects_out_of_range() -> None:
    document = SourceDocument("x = 1\n", PY)
    with pytest.raises(ValueError):
        document.apply_change(3, 100, "")


# --- scopes ---------------------------------------------------------------------------------

NESTED = '''import os


class Outer:
    x = 1

    def a(self):
        return 1

    def b(self):
        def inner():
            return 2
        return inner()


value = 3


def top():
    pass
'''


def test_enclosing_scope_smallest_and_common_ancestor() -> None:
    snap = py_snap(NESTED)
    assert enclosing_scope(snap, 11, 11).qualname == "Outer.b.inner"
    assert enclosing_scope(snap, 10, 12).qualname == "Outer.b"
    assert enclosing_scope(snap, 7, 10).qualname == "Outer"  # spans a() and b()
    assert enclosing_scope(snap, 16, 16) is None  # module level
    assert enclosing_scope(snap, 12, 16) is None  # from inside a method to module level
    assert enclosing_scope(snap, 19, 19).name == "top"


def test_all_scopes_kinds_filter_and_decorators() -> None:
    snap = py_snap("@dec\ndef f():\n    pass\n\n\nclass C:\n    @property\n    def p(self):\n        return 1\n")
    scopes = all_scopes(snap)
    assert [(s.kind, s.qualname, s.start_line, s.end_line) for s in scopes] == [
        ("function", "f", 0, 2), ("class", "C", 5, 8), ("method", "C.p", 6, 8)
    ]
    assert [s.name for s in all_scopes(snap, kinds=("class",))] == ["C"]


# --- syntax errors --------------------------------------------------------------------------


def test_syntax_error_missing_token() -> None:
    [problem] = syntax_errors(py_snap("def f(:\n    pass\n"))
    assert problem.message == "syntax error: missing ')'"
    assert (problem.start_line, problem.start_col) == (0, 6)


def test_syntax_error_columns_are_code_points() -> None:
    [problem] = syntax_errors(py_snap('label = "é😀"; foo(1 2)\n'))
    assert problem.message == "syntax error: unexpected '2'"
    assert (problem.start_line, problem.start_col, problem.end_line, problem.end_col) == (0, 20, 0, 21)


def test_no_syntax_errors_in_valid_code() -> None:
    assert syntax_errors(py_snap(NESTED)) == []


# --- context --------------------------------------------------------------------------------


def _big_module(function_lines: int = 200) -> str:
    body = "".join(f"    total += helper_{i % 5}(value) * {i}\n" for i in range(function_lines))
    helpers = "".join(f"def helper_{i}(v):\n    return v + {i}\n\n\n" for i in range(5))
    return (
        '"""Module."""\nimport os\nimport sys\n\n\n' + helpers
        + "class Box:\n    size = 3\n\n    def big(self, value):\n        total = 0\n"
        + body.replace("    total", "        total") + "        return total\n"
    )


def test_budget_is_respected_and_tokens_match_prompt() -> None:
    snap = py_snap(_big_module())
    big = next(s for s in all_scopes(snap) if s.name == "big")
    for budget in (60, 150, 400, 1000, 3000, 20000):
        context = pick_context(snap, big.start_line + 50, big.start_line + 52, path="m.py", budget_tokens=budget)
        assert context.tokens == estimate_tokens(context.prompt)
        assert context.tokens <= budget
        low, high = context.region
        assert big.start_line <= low <= big.start_line + 50 and big.start_line + 52 <= high <= big.end_line


def test_priority_order_and_greedy_dropping() -> None:
    snap = py_snap(_big_module(function_lines=40))
    big = next(s for s in all_scopes(snap) if s.name == "big")
    rank = {"target": 0, "imports": 1, "class": 2, "definition": 3, "other": 4}
    full = pick_context(snap, big.start_line, big.start_line, path="m.py", budget_tokens=50000)
    assert [s.role for s in full.sections] == ["target", "imports", "class"] + ["definition"] * 5
    assert full.region == (big.start_line, big.end_line)
    costs = {s.start_line: len(s.text) for s in full.sections}
    seen_partial = False
    for budget in range(300, 1200, 25):
        context = pick_context(snap, big.start_line, big.start_line, path="m.py", budget_tokens=budget)
        roles = [rank[s.role] for s in context.sections]
        assert roles == sorted(roles)
        included = {s.start_line for s in context.sections}
        # A lower-priority section is only present if every higher-priority one of no greater size is.
        for section in context.sections:
            for earlier in full.sections:
                if rank[earlier.role] < rank[section.role] and costs[earlier.start_line] <= len(section.text):
                    assert earlier.start_line in included
        if 0 < len(context.sections) < len(full.sections):
            seen_partial = True
    assert seen_partial


def test_target_window_when_scope_exceeds_budget() -> None:
    snap = py_snap(_big_module(function_lines=400))
    big = next(s for s in all_scopes(snap) if s.name == "big")
    line = big.start_line + 200
    context = pick_context(snap, line, line, path="m.py", budget_tokens=300)
    low, high = context.region
    assert low <= line <= high and (low, high) != (big.start_line, big.end_line)
    assert context.sections[0].title.endswith("(partly)")
    assert context.tokens <= 300


def test_prompt_is_line_numbered_with_file_header() -> None:
    snap = py_snap(NESTED)
    context = pick_context(snap, 7, 7, path="pkg/nested.py")
    assert context.prompt.startswith("File: pkg/nested.py\n")
    assert "   7 |     def a(self):\n" in context.prompt
    assert "   1 | import os\n" in context.prompt
    assert "   4 | class Outer:\n   5 |     x = 1\n" in context.prompt


def test_definitions_from_other_documents() -> None:
    main = py_snap("from util import shared, local_only\n\n\ndef local_only():\n    return 1\n\n\n"
                   "def run():\n    return shared(2) + local_only()\n")
    util = py_snap("def shared(x):\n    return x * 2\n\n\ndef local_only():\n    return 'other'\n\n\n"
                   "def unrelated():\n    return 0\n")
    context = pick_context(main, 8, 8, path="main.py", others=[("util.py", util)])
    other = [s for s in context.sections if s.role == "other"]
    assert [(s.path, s.symbol) for s in other] == [("util.py", "shared")]
    assert any(s.role == "definition" and s.symbol == "local_only" for s in context.sections)
    assert "File: util.py\n" in context.prompt and "   2 |     return x * 2\n" in context.prompt
    assert context.prompt.index("File: main.py") < context.prompt.index("File: util.py")


def test_large_definition_shows_signature_only() -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(40))
    snap = py_snap(f"def long_helper(a, b):\n{long_body}    return a\n\n\ndef use():\n    return long_helper(1, 2)\n")
    use = next(s for s in all_scopes(snap) if s.name == "use")
    context = pick_context(snap, use.start_line, use.start_line, path="m.py")
    [section] = [s for s in context.sections if s.symbol == "long_helper"]
    assert section.elided and (section.start_line, section.end_line) == (0, 0)
    assert "   1 | def long_helper(a, b):\n     | ...\n" in context.prompt


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ('"""Doc\nstring."""\n\nx = 1\n', "python", (2, 1)),
        ("#!/usr/bin/env python\n# comment\nx = 1\n", "python", (2, 1)),
        ("x = 1\n", "python", (0, -1)),
        ("package main\n\nfunc main() {}\n", "go", (1, 0)),
        ("package a;\n\nclass A {}\n", "java", (1, 0)),
    ],
)
def test_import_region_is_empty_insertion_range_without_imports(text: str, language: str, expected: tuple) -> None:
    snap = snapshot_of(text, language_for(language_id=language))
    last = max(0, snap.line_count - 1)
    context = pick_context(snap, last, last, path="f")
    assert context.import_region == expected


def test_module_level_range_uses_line_window() -> None:
    text = "".join(f"v{i} = {i}\n" for i in range(200))
    context = pick_context(py_snap(text), 100, 101, path="m.py", budget_tokens=5000)
    assert context.target is None
    assert context.region == (100 - FALLBACK_WINDOW_LINES, 101 + FALLBACK_WINDOW_LINES)


def test_empty_document() -> None:
    context = pick_context(py_snap(""), 0, 0, path="e.py")
    assert context.target is None and context.region == (0, 0)
    assert context.import_region == (0, -1)
