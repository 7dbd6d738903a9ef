"""Target regions in files with syntax errors never swallow a sibling (issue #11, repro 1).

tree-sitter's error recovery can stretch a broken function over the next one (or lose it): the
scope, and so the region a scope-format reply replaces, must stop before the sibling in all nine
built-in languages, and the range-limited lookup must agree with the whole-file one.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from check_helpers import make_repo, run_check
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

from spark_ls.actions.catalog import builtin_actions, find_action
from spark_ls.actions.run import ActionRequest, finish, prepare
from spark_ls.config import Settings
from spark_ls.context import (
    all_scopes,
    enclosing_scope,
    language_for,
    pick_context,
    snapshot_of,
)
from spark_ls.model.types import ModelReply

SYN_PY = 'def greet(name):\n    print("hello, " + name\n\ndef add(a, b):\n    return a + b\n'
GREET_FIXED = 'def greet(name):\n    print("hello, " + name)\n'

# (file name, text): a syntax error inside `greet`, followed by its sibling `add` (unclosed
# parentheses, missing closing braces, a missing colon, broken JSX, broken class members).
BROKEN: dict[str, tuple[str, str]] = {
    "py-paren": ("x.py", SYN_PY),
    "py-colon": ("x.py", 'def greet(name)\n    print("hello, " + name)\n\ndef add(a, b):\n    return a + b\n'),
    "py-decorated": ("x.py", 'def greet(name):\n    print("hello, " + name\n\n@cache\ndef add(a, b):\n    return a + b\n'),
    "py-method": ("x.py", ('class A:\n    def greet(self, name):\n        print("x" + name\n\n'
                          '    def add(self, a, b):\n        return a + b\n')),
    "js-paren": ("x.js", 'function greet(name) {\n  console.log("hello, " + name;\n}\n\nfunction add(a, b) {\n  return a + b;\n}\n'),
    "js-brace": ("x.js", 'function greet(name) {\n  console.log("hello, " + name);\n\n// Sum.\nfunction add(a, b) {\n  return a + b;\n}\n'),
    "js-method": ("x.js", 'class A {\n  greet(name) {\n    console.log("hello, " + name;\n\n  add(a, b) {\n    return a + b;\n  }\n}\n'),
    "ts-paren": ("x.ts", ('function greet(name: string): void {\n  console.log("hello, " + name;\n}\n\n'
                         'function add(a: number, b: number): number {\n  return a + b;\n}\n')),
    "ts-brace": ("x.ts", ('function greet(name: string): void {\n  console.log("hello, " + name);\n\n'
                         'function add(a: number, b: number): number {\n  return a + b;\n}\n')),
    "tsx-jsx": ("x.tsx", ('function greet(name: string) {\n  return <div>{name</div>;\n}\n\n'
                         'function add(a: number, b: number): number {\n  return a + b;\n}\n')),
    "go-paren": ("x.go", ('package main\n\nfunc greet(name string) {\n\tprintln("hello, " + name\n}\n\n'
                         'func add(a, b int) int {\n\treturn a + b\n}\n')),
    "go-brace": ("x.go", ('package main\n\nfunc greet(name string) {\n\tprintln("hello, " + name)\n\n'
                         'func add(a, b int) int {\n\treturn a + b\n}\n')),
    "rust-paren": ("x.rs", 'fn greet(name: &str) {\n    println!("hello, {}", name;\n}\n\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n'),
    "rust-brace": ("x.rs", 'fn greet(name: &str) {\n    let x = (1 + 2;\n\n#[inline]\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n'),
    "java-brace": ("X.java", ('class X {\n    void greet(String name) {\n        System.out.println("hello, " + name;\n\n'
                             '    int add(int a, int b) {\n        return a + b;\n    }\n}\n')),
    "java-paren": ("X.java", ('class X {\n    void greet(String name) {\n        System.out.println("hello, " + name;\n    }\n\n'
                             '    int add(int a, int b) {\n        return a + b;\n    }\n}\n')),
    "c-paren": ("x.c", ('#include <stdio.h>\n\nvoid greet(const char *name) {\n    printf("hello, %s\\n", name;\n}\n\n'
                       'int add(int a, int b) {\n    return a + b;\n}\n')),
    "c-brace": ("x.c", ('void greet(const char *name) {\n    printf("hello, %s\\n", name);\n\n/* Sum. */\n'
                       'int add(int a, int b) {\n    return a + b;\n}\n')),
    "cpp-brace": ("x.cpp", ('void greet(const char *name) {\n    std::cout << name << (1 + 2;\n\n'
                           'int add(int a, int b) {\n    return a + b;\n}\n')),
    "cpp-method": ("x.cpp", ('class A {\npublic:\n    void greet(int n) {\n        total += (n;\n\n'
                            '    int add(int a, int b) {\n        return a + b;\n    }\n};\n')),
}


def _lines_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines()) if needle in line)


def _case(key: str) -> tuple[Any, str, int, int]:
    path, text = BROKEN[key]
    language = language_for(path=path)
    assert language is not None
    greet = _lines_of(text, "greet(")
    sibling_first = _lines_of(text, "add(")
    # The sibling starts at its decorator, attribute or doc comment when it has one.
    while sibling_first > 0 and text.splitlines()[sibling_first - 1].strip().startswith(("@", "#[", "//", "/*")):
        sibling_first -= 1
    return language, text, greet, sibling_first


def test_every_builtin_language_is_covered() -> None:
    from spark_ls.context import all_languages

    covered = {language_for(path=path).name for path, _ in BROKEN.values()}  # type: ignore[union-attr]
    assert covered == {spec.name for spec in all_languages()}


@pytest.mark.parametrize("key", sorted(BROKEN))
def test_broken_function_region_stops_before_its_sibling(key: str) -> None:
    language, text, greet, sibling_first = _case(key)
    snap = snapshot_of(text, language)
    assert snap.tree is not None and snap.tree.root_node.has_error
    own = [line for line in range(greet, sibling_first) if text.splitlines()[line].strip()]  # greet's lines
    for line in own:
        context = pick_context(snap, line, line, path=key)
        _first, last = context.region
        assert last < sibling_first, (key, line, context.region, context.target)
        if context.target is not None:
            assert context.target.end_line < sibling_first
    # The sibling is a scope of its own again, not part of greet's.
    add_line = _lines_of(text, "add(")
    sibling = pick_context(snap, add_line, add_line, path=key)
    assert sibling.target is not None and sibling.target.name == "add", (key, sibling.target)
    assert sibling.region[0] >= sibling_first > own[-1]
    scope = enclosing_scope(snap, greet + 1, greet + 1)
    if key != "py-colon":  # a header without its colon parses as nothing a scope can come from
        assert scope is not None and scope.name == "greet", (key, scope)


@pytest.mark.parametrize("key", sorted(BROKEN))
def test_sibling_keeps_its_own_scope(key: str) -> None:
    language, text, _, sibling_first = _case(key)
    snap = snapshot_of(text, language)
    names = [s.name for s in all_scopes(snap) if s.start_line >= sibling_first or s.name == "add"]
    assert "add" in names
    add = next(s for s in all_scopes(snap) if s.name == "add")
    assert add.start_line >= sibling_first


@pytest.mark.parametrize("key", sorted(BROKEN))
def test_range_limited_lookup_agrees_on_broken_files(key: str) -> None:
    language, text, _, _ = _case(key)
    lines = text.count("\n")
    full = snapshot_of(text, language)
    all_scopes(full)
    for start in range(lines):
        for end in (start, min(lines - 1, start + 2)):
            fresh = snapshot_of(text, language)  # nothing cached: the range-limited path
            assert enclosing_scope(fresh, start, end) == enclosing_scope(full, start, end), (key, start, end)


# ------------------------------------------------------------------ mutations of real fixtures

SAMPLES = sorted((Path(__file__).parent / "fixtures" / "context").glob("sample.*"))


def _mutations(lines: list[str], first: int, last: int) -> list[tuple[str, int, list[str]]]:
    """Breaks inside lines first..last: a dropped ')' or ':', a blanked closing brace, a stray '('."""
    out: list[tuple[str, int, list[str]]] = []
    for i in range(first, last + 1):
        line = lines[i]
        if line.rstrip().endswith(":") and not line.strip().startswith(("case", "default", "public", "private")):
            j = line.rindex(":")
            out.append((f"drop ':' on line {i + 1}", i, [*lines[:i], line[:j] + line[j + 1 :], *lines[i + 1 :]]))
        if i == first:
            continue
        if ")" in line:
            j = line.rindex(")")
            out.append((f"drop ')' on line {i + 1}", i, [*lines[:i], line[:j] + line[j + 1 :], *lines[i + 1 :]]))
        if line.strip() in ("}", "};"):
            out.append((f"blank '}}' on line {i + 1}", i - 1, [*lines[:i], "\n", *lines[i + 1 :]]))
        if line.strip() and i < last:
            out.append((f"open '(' on line {i + 1}", i, [*lines[:i], line.rstrip("\n") + " (\n", *lines[i + 1 :]]))
    return out


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.suffix)
def test_a_break_in_any_function_never_reaches_its_siblings(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    language = language_for(path=str(path))
    assert language is not None
    lines = text.splitlines(keepends=True)
    scopes = all_scopes(snapshot_of(text, language))
    checked = 0
    for scope in scopes:
        if scope.kind == "class":
            continue
        related = [o for o in scopes if (o.start_line <= scope.start_line and scope.end_line <= o.end_line)
                   or (scope.start_line <= o.start_line and o.end_line <= scope.end_line)]
        siblings = [o for o in scopes if o not in related]
        for what, line, mutated in _mutations(lines, scope.start_line, scope.end_line):
            snap = snapshot_of("".join(mutated), language)
            region = pick_context(snap, line, line, path=path.name).region
            hit = [o.qualname for o in siblings if not (o.end_line < region[0] or o.start_line > region[1])]
            assert not hit, (path.name, scope.qualname, what, region)
            fresh = snapshot_of("".join(mutated), language)
            assert enclosing_scope(fresh, line, line) == enclosing_scope(snap, line, line), (what,)
            checked += 1
    assert checked >= 6


# ------------------------------------------------------------------ the repro, end to end


def _action(action_id: str) -> Any:
    action = find_action(builtin_actions(), action_id)
    assert action is not None
    return action


@pytest.mark.parametrize("action_id", ["fix-bug", "fix-diagnostic"])
def test_scope_reply_with_just_greet_keeps_add_library(action_id: str) -> None:
    snap = snapshot_of(SYN_PY, language_for(path="syn.py"))
    request = ActionRequest(action=_action(action_id), path="syn.py", snapshot=snap, start_line=1, end_line=1,
                            diagnostic_message="syntax error" if action_id == "fix-diagnostic" else None)
    prepared = prepare(request, "test-model", "scope", Settings())
    assert prepared.scope == (0, 1)
    assert prepared.target is not None and prepared.target.name == "greet"
    reply = ModelReply(text=f"```python\n{GREET_FIXED}```\n", model="test-model")
    result = finish(prepared, reply, snap)
    assert result.new_text == GREET_FIXED + SYN_PY[SYN_PY.index("\ndef add"):]


def test_scope_reply_with_just_greet_keeps_add_check(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"syn.py": SYN_PY.encode()})

    def reply(body: dict[str, Any]) -> str:
        task = input_text(body.get("input")).rsplit("Task:", 1)[-1]
        if "`add`" in task:
            return "```python\ndef add(a, b):\n    return a + b\n```\n"
        return f"```python\n{GREET_FIXED}```\n"  # every task about greet or its line 2

    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=reply) as endpoint:
        result = run_check(repo, endpoint.base_url, "--format", "json", "syn.py",
                           env={"SPARK_LS_EDIT_FORMAT": "scope"})
        patch = run_check(repo, endpoint.base_url, "syn.py", env={"SPARK_LS_EDIT_FORMAT": "scope"})
    assert result.returncode == 1, result.stderr
    proposals = json.loads(result.stdout)["proposals"]
    assert proposals and {p["scope_name"] for p in proposals} == {"greet"}
    for proposal in proposals:
        removed = [line for line in proposal["diff"].splitlines() if line.startswith("-") and not line.startswith("---")]
        assert removed == ['-    print("hello, " + name'], proposal["diff"]
    assert patch.returncode == 1, patch.stderr
    (repo / "fix.patch").write_text(patch.stdout)
    subprocess.run(["git", "apply", "fix.patch"], cwd=repo, check=True)
    assert (repo / "syn.py").read_text() == GREET_FIXED + SYN_PY[SYN_PY.index("\ndef add"):]
