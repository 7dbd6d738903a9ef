"""Unit tests of `spark-ls check`'s pieces: planning, sharding, merging, files, findings, escaping."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import git, make_repo

from spark_ls.actions.catalog import action_from_table
from spark_ls.check.files import (
    CheckInputError,
    UnreadableFile,
    changed_lines,
    collect_files,
    match_line_endings,
    read_source,
)
from spark_ls.check.findings import load_findings
from spark_ls.check.formats import _command
from spark_ls.check.plan import (
    ScopeSpan,
    SyntaxFinding,
    candidate_scopes,
    group_for,
    outermost,
    parse_shard,
    plan_targets,
    shard_of,
    touched_scopes,
)
from spark_ls.check.report import Proposal, Target, TextEdit
from spark_ls.check.runner import merge_proposals


def action(**table: object) -> object:
    """A catalog action (the one type `check` plans with), from a table as in builtin.toml."""
    return action_from_table({"instruction": "do it", "kind": "quickfix", **table}, user_defined=False)


FIX_BUG = action(id="fix-bug", title="Fix bug in {name}", scope_kinds=["function", "method"])
DOCSTRING = action(id="add-docstring", title="Add docstring to {name}", scope_kinds=["function", "method", "class"])
FIX_DIAGNOSTIC = action(id="fix-diagnostic", title="Fix: {message}", applies_to="diagnostic")

SPANS = [
    ScopeSpan("function", "top", 0, 9),
    ScopeSpan("function", "inner", 2, 5),  # nested in top
    ScopeSpan("class", "Box", 12, 30),
    ScopeSpan("method", "area", 14, 17),
    ScopeSpan("method", "volume", 19, 24),
]


# ------------------------------------------------------------------ planning


def test_outermost_folds_nested_functions() -> None:
    kept = outermost([s for s in SPANS if s.kind != "class"])
    assert [s.name for s in kept] == ["top", "area", "volume"]


def test_candidate_scopes_follow_the_action_kinds() -> None:
    assert [s.name for s in candidate_scopes(SPANS, FIX_BUG.scope_kinds)] == ["top", "area", "volume"]
    assert [s.name for s in candidate_scopes(SPANS, DOCSTRING.scope_kinds)] == ["top", "Box", "area", "volume"]


def test_touched_scopes_maps_changed_lines_to_scopes() -> None:
    # A change inside the nested function touches its outer function; a change in the class body
    # between methods touches the class only when the action takes classes.
    assert [s.name for s in touched_scopes(SPANS, [(3, 3)], FIX_BUG.scope_kinds)] == ["top"]
    assert [s.name for s in touched_scopes(SPANS, [(18, 18)], FIX_BUG.scope_kinds)] == []
    assert [s.name for s in touched_scopes(SPANS, [(18, 18)], DOCSTRING.scope_kinds)] == ["Box"]
    assert [s.name for s in touched_scopes(SPANS, [(16, 20)], FIX_BUG.scope_kinds)] == ["area", "volume"]
    assert touched_scopes(SPANS, [(10, 11)], FIX_BUG.scope_kinds) == []


def test_group_for_prefers_outermost_function_then_class_then_lines() -> None:
    assert group_for(SPANS, 4, 4)[0] == "function:top:1"
    assert group_for(SPANS, 15, 15)[0] == "method:area:15"
    assert group_for(SPANS, 18, 18)[0] == "class:Box:13"
    assert group_for(SPANS, 10, 11)[0] == "lines:11-12"


def test_plan_orders_by_position_then_action_and_merges_syntax_errors_per_scope() -> None:
    targets = plan_targets(
        "a.py", SPANS, actions=[FIX_BUG, DOCSTRING], diagnostic_action=FIX_DIAGNOSTIC,
        syntax_problems=[SyntaxFinding(15, 15, "syntax error: missing ')'"),
                         SyntaxFinding(16, 16, "syntax error: unexpected 'x'")],
        lines=["x\n"] * 31,
    )
    described = [(t.action_id, t.group) for t in targets]
    assert described == [
        ("fix-bug", "function:top:1"), ("add-docstring", "function:top:1"),
        ("add-docstring", "class:Box:13"),
        ("fix-bug", "method:area:15"), ("add-docstring", "method:area:15"),
        ("fix-diagnostic", "method:area:15"),
        ("fix-bug", "method:volume:20"), ("add-docstring", "method:volume:20"),
    ]
    assert [t.order for t in targets] == list(range(len(targets)))
    syntax = targets[5]
    assert (syntax.start_line, syntax.end_line) == (15, 16)
    assert "line 16" in syntax.message and "line 17" in syntax.message
    assert targets[0].title == "Fix bug in top"


def test_a_file_action_takes_the_syntax_errors() -> None:
    fix_all = action(id="fix-all", title="Fix all", applies_to="file")
    problems = [SyntaxFinding(3, 3, "missing ')'"), SyntaxFinding(20, 20, "unexpected ']'")]
    targets = plan_targets("a.py", SPANS, actions=[fix_all], diagnostic_action=FIX_DIAGNOSTIC,
                           syntax_problems=problems, lines=["x\n"] * 31)
    assert [(t.action_id, t.group, t.problems) for t in targets] == [
        ("fix-all", "file", ((3, "missing ')'"), (20, "unexpected ']'"))),
    ]
    assert plan_targets("a.py", SPANS, actions=[fix_all], lines=["x\n"] * 31) == []  # nothing to fix


def test_plan_with_changed_lines_filters_scopes_and_diagnostics() -> None:
    from spark_ls.check.findings import Finding

    findings = [Finding("a.py", 4, 4, "F841: unused", "F841", "ruff"), Finding("a.py", 20, 20, "E1: x", "E1", "ruff")]
    targets = plan_targets("a.py", SPANS, actions=[FIX_BUG], diagnostic_action=FIX_DIAGNOSTIC,
                           findings=findings, changed=[(20, 21)], lines=["x\n"] * 31)
    assert [(t.action_id, t.scope_name, t.rule_id) for t in targets] == [
        ("fix-bug", "volume", None), ("fix-diagnostic", "volume", "E1"),
    ]


def test_requires_pattern_filters_scopes() -> None:
    lines = ["def top():\n"] + ["    pass\n"] * 30
    lines[15] = "    for x in y:\n"
    choice = action(id="loops", title="t", requires=r"\bfor\b", scope_kinds=["function", "method"])
    assert [t.scope_name for t in plan_targets("a.py", SPANS, actions=[choice], lines=lines)] == ["area"]


def test_shards_partition_every_scope_independently_of_order() -> None:
    keys = [(f"src/m{i}.py", f"function:f{j}:{j * 7 + 1}") for i in range(40) for j in range(5)]
    count = 4
    first = {key: shard_of(*key, count) for key in keys}
    shuffled = keys[:]
    random.Random(7).shuffle(shuffled)
    assert {key: shard_of(*key, count) for key in shuffled} == first
    assert set(first.values()) == {1, 2, 3, 4}  # 200 scopes spread over every shard
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


# ------------------------------------------------------------------ merging


def _proposal(order: int, action: str, edits: list[tuple[int, int, str]], text: str = "") -> Proposal:
    """Edits given as (start, end, new text) offsets into ``text``."""
    target = Target(rel_path="a.py", action_id=action, title=action, start_line=0, end_line=0,
                    group=f"g{order}", order=order)

    def position(offset: int) -> tuple[int, int]:
        line = text.count("\n", 0, offset)
        return line, offset - (text.rfind("\n", 0, offset) + 1)

    text_edits = [TextEdit(*position(s), *position(e), t, s, e) for s, e, t in edits]
    return Proposal(target=target, new_text="", edits=text_edits, diff="")


ORIGINAL = "l0 = 0\nl1 = 1\nl2 = 2\nl3 = 3\n"


def test_merge_applies_disjoint_edits_and_withdraws_overlaps() -> None:
    first = _proposal(0, "fix-bug", [(12, 13, "10")], ORIGINAL)  # line 1
    disjoint = _proposal(1, "simplify", [(26, 27, "30")], ORIGINAL)  # line 3
    overlapping = _proposal(2, "add-types", [(12, 20, "9\nl2 = 9")], ORIGINAL)  # lines 1-2
    text, accepted, conflicts = merge_proposals(ORIGINAL, [overlapping, disjoint, first])
    assert text == "l0 = 0\nl1 = 10\nl2 = 2\nl3 = 30\n"
    assert [p.target.action_id for p in accepted] == ["fix-bug", "simplify"]
    assert [(c.target.action_id, c.kind) for c in conflicts] == [("add-types", "conflict")]
    assert "fix-bug" in conflicts[0].reason


def test_different_changes_to_one_line_conflict_even_without_overlapping_characters() -> None:
    first = _proposal(0, "fix-bug", [(12, 13, "10")], ORIGINAL)
    same_line = _proposal(1, "simplify", [(0, 2, "zero")], ORIGINAL)  # line 0: fine
    same_line_too = _proposal(2, "add-types", [(7, 9, "one")], ORIGINAL)  # line 1 again: conflict
    text, _, conflicts = merge_proposals(ORIGINAL, [first, same_line, same_line_too])
    assert text == "zero = 0\nl1 = 10\nl2 = 2\nl3 = 3\n"
    assert [c.target.action_id for c in conflicts] == ["add-types"]


def test_merge_applies_an_identical_edit_once() -> None:
    import_line = "import typing\n"
    a = _proposal(0, "add-types", [(0, 0, import_line), (7, 9, "x1")], ORIGINAL)
    b = _proposal(1, "add-types", [(0, 0, import_line), (21, 23, "x3")], ORIGINAL)
    text, accepted, conflicts = merge_proposals(ORIGINAL, [a, b])
    assert conflicts == [] and len(accepted) == 2
    assert text == import_line + "l0 = 0\nx1 = 1\nl2 = 2\nx3 = 3\n"


def test_two_different_insertions_at_one_place_conflict() -> None:
    a = _proposal(0, "p", [(7, 7, "# A\n")], ORIGINAL)
    b = _proposal(1, "q", [(7, 7, "# B\n")], ORIGINAL)
    text, accepted, conflicts = merge_proposals(ORIGINAL, [a, b])
    assert text == "l0 = 0\n# A\nl1 = 1\nl2 = 2\nl3 = 3\n" and len(accepted) == 1 and len(conflicts) == 1


# ------------------------------------------------------------------ files


def test_read_source_keeps_bom_and_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"\xef\xbb\xbfx = 1\r\ny = 2\r\n")
    decoded = read_source(path)
    assert decoded.has_bom and decoded.text == "x = 1\r\ny = 2\r\n"
    assert decoded.encode() == path.read_bytes()


@pytest.mark.parametrize(("data", "words"), [
    (b"\x00\x01binary\x00", "binary"),
    (b"x = '\xff\xfe'\n", "not valid UTF-8"),
])
def test_read_source_refuses_binary_and_invalid_utf8(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(data)
    with pytest.raises(UnreadableFile, match=words):
        read_source(path)


def test_match_line_endings_only_for_consistent_crlf() -> None:
    assert match_line_endings("a\r\nb\r\n", "a\r\nc\nd\r\n") == "a\r\nc\r\nd\r\n"
    assert match_line_endings("a\nb\r\n", "a\nc\n") == "a\nc\n"
    assert match_line_endings("a\nb\n", "a\nc\n") == "a\nc\n"


def test_collect_files_uses_git_file_list_and_refuses_escaping_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("def secret():\n    return 1\n")
    repo = make_repo(tmp_path / "repo", {"untracked_later.txt": b"x\n"})
    (repo / "new_untracked.py").write_text("def n():\n    return 0\n")
    (repo / "escape.py").symlink_to(outside)
    (repo / "inside_link.py").symlink_to(repo / "calc.py")
    selection = collect_files([str(repo)], root=repo)
    names = [f.rel_path for f in selection.files]
    assert "build/generated.py" not in names  # .gitignore'd
    assert "new_untracked.py" in names and "calc.py" in names and "web/util.js" in names
    assert names == sorted(names) and names.count("calc.py") == 1
    assert [path for path, _ in selection.skipped] == ["escape.py"]
    assert "outside" in selection.skipped[0][1]
    with pytest.raises(CheckInputError):
        collect_files([str(repo / "does-not-exist")], root=repo)


def test_a_named_symlink_leading_out_of_its_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "real.py").write_text("x = 1\n")
    (tmp_path / "src" / "local.py").write_text("y = 1\n")
    (tmp_path / "src" / "away.py").symlink_to(tmp_path / "other" / "real.py")
    (tmp_path / "src" / "near.py").symlink_to(tmp_path / "src" / "local.py")
    selection = collect_files([str(tmp_path / "src" / "away.py"), str(tmp_path / "src" / "near.py")], root=tmp_path)
    assert [f.rel_path for f in selection.files] == ["src/local.py"]
    assert [path for path, _ in selection.skipped] == ["src/away.py"]
    assert selection.roots == [(tmp_path / "src").resolve()] * 2


def test_collect_files_outside_git_walks_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.py").write_text("x = 1\n")
    selection = collect_files([str(tmp_path)], root=tmp_path)
    assert [f.rel_path for f in selection.files] == ["pkg/a.py"]


def test_changed_lines_against_merge_base(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "feature")
    text = (repo / "calc.py").read_text().replace("return a - b", "return a + b  # fixed")
    text = text.replace("        self.h = h\n", "")
    (repo / "calc.py").write_text(text)
    (repo / "fresh.py").write_text("def f():\n    pass\n")
    changed = changed_lines(base, repo, ["calc.py", "fresh.py", "main.go"])
    assert changed["calc.py"][0] == (5, 5)
    assert len(changed["calc.py"]) == 2  # the deletion marks the line around it
    assert changed["fresh.py"][0][0] == 0
    assert "main.go" not in changed
    with pytest.raises(CheckInputError):
        changed_lines("no-such-ref", repo, ["calc.py"])


# ------------------------------------------------------------------ imported findings


def _ruff_sample(tmp_path: Path, output_format: str) -> Path:
    source = tmp_path / "lint_me.py"
    source.write_text("import os\n\n\ndef f(x):\n    y = 1\n    return x == None\n")
    out = subprocess.run(
        ["ruff", "check", "--no-cache", "--isolated", "--select", "F401,F841,E711",
         "--output-format", output_format, str(source)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert out.stdout.strip(), out.stderr
    report = tmp_path / f"ruff.{output_format}"
    report.write_text(out.stdout)
    return report


@pytest.mark.parametrize("output_format", ["json", "sarif"])
def test_real_ruff_findings_load(tmp_path: Path, output_format: str) -> None:
    report = _ruff_sample(tmp_path, output_format)
    findings = load_findings(str(report), root=tmp_path)
    assert {(f.rel_path, f.rule_id, f.start_line) for f in findings} == {
        ("lint_me.py", "F401", 0), ("lint_me.py", "F841", 4), ("lint_me.py", "E711", 5),
    }
    assert all(f.end_line == f.start_line for f in findings)
    assert any("os" in f.message for f in findings if f.rule_id == "F401")


def test_sarif_findings_with_relative_uris_and_message_strings(tmp_path: Path) -> None:
    log = {
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "other", "rules": [
                {"id": "R1", "messageStrings": {"default": {"text": "bad thing"}}}]}},
            "artifacts": [{"location": {"uri": "src/x.py", "uriBaseId": "%SRCROOT%"}}],
            "results": [
                {"ruleId": "R1", "message": {"id": "default"},
                 "locations": [{"physicalLocation": {"artifactLocation": {"index": 0},
                                                     "region": {"startLine": 3, "endLine": 4}}}]},
                {"ruleId": "R2", "message": {"text": "uses {0}", "arguments": ["eval"]},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/y%20z.py"},
                                                     "region": {"startLine": 7}}}]},
            ],
        }],
    }
    path = tmp_path / "x.sarif"
    path.write_text(json.dumps(log))
    findings = load_findings(str(path), root=tmp_path)
    assert [(f.rel_path, f.start_line, f.end_line, f.message) for f in findings] == [
        ("src/x.py", 2, 3, "R1: bad thing"),
        ("src/y z.py", 6, 6, "R2: uses eval"),
    ]


def test_unrecognised_findings_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(CheckInputError, match="neither SARIF"):
        load_findings(str(path), root=tmp_path)


# ------------------------------------------------------------------ github escaping


def test_github_workflow_commands_are_escaped() -> None:
    line = _command("warning", "50% done\r\nnext: a,b", file="dir/a,b:c.py", line=3, title="x: y, z")
    assert line == "::warning file=dir/a%2Cb%3Ac.py,line=3,title=x%3A y%2C z::50%25 done%0D%0Anext: a,b"
    assert "\n" not in line



# ------------------------------------------------------------------ progress and layering


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise() -> None:
    from spark_ls.check.progress import PlainProgress, RichProgress, make_progress

    target = Target(rel_path="a.py", action_id="fix-bug", title="t", start_line=2, end_line=4,
                    group="function:f:3", scope_kind="function", scope_name="f")
    plain_stream = io.StringIO()
    plain = make_progress(quiet=False, stream=plain_stream)
    assert isinstance(plain, PlainProgress)
    plain.begin(1, 1)
    plain.action_done(target, "proposal")
    assert plain_stream.getvalue().splitlines()[-1] == "[1/1] a.py:3: fix-bug (function f): proposal"
    terminal = _Terminal()
    bar = make_progress(quiet=False, stream=terminal)
    assert isinstance(bar, RichProgress)
    bar.begin(1, 1)
    bar.tokens(1234)
    bar.action_done(target, "proposal")
    bar.file_done("a.py")
    bar.end()
    drawn = terminal.getvalue()
    assert "actions" in drawn and "1234 tokens" in drawn
    quiet_stream = io.StringIO()
    quiet = make_progress(quiet=True, stream=quiet_stream)
    quiet.begin(1, 1)
    quiet.action_done(target, "proposal")
    quiet.log("refused a.py:3")
    assert quiet_stream.getvalue() == "spark-ls: refused a.py:3\n"


def test_check_never_imports_the_lsp_libraries() -> None:
    code = (
        "import sys, spark_ls.check, spark_ls.check.command, spark_ls.actions.run, spark_ls.model;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol')];"
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stdout + result.stderr
