"""`python -m spark_ls check` end to end: a real git repository, the real command line in a
subprocess, and the fake model endpoint speaking the real wire protocol with scripted diffs."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from check_helpers import (
    CALC_PY,
    REPO_ROOT,
    ScriptedModel,
    git,
    json_report,
    make_repo,
    run_check,
)
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "sarif-schema-2.1.0.json").read_text())
EXPECTED_SCOPES = {("calc.py", "add"), ("calc.py", "circle_area"), ("calc.py", "area"),
                   ("web/util.js", "greet"), ("main.go", "Max")}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def model(repo: Path) -> ScriptedModel:
    return ScriptedModel(repo)


@pytest.fixture
def endpoint(model: ScriptedModel) -> Iterator[ModelEndpoint]:
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        yield ep


def _proposed(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["path"], p["scope_name"]) for p in report["proposals"]}


# ------------------------------------------------------------------ formats


def test_diff_format_is_one_patch_git_applies(repo: Path, endpoint: ModelEndpoint) -> None:
    result = run_check(repo, endpoint.base_url)
    assert result.returncode == 1, result.stderr
    patch = result.stdout
    headers = re.findall(r"^\+\+\+ b/(\S+)", patch, re.MULTILINE)
    assert headers == ["calc.py", "main.go", "web/util.js"]  # sorted, one section per file
    (repo / "fix.patch").write_text(patch)
    subprocess.run(["git", "apply", "--check", "fix.patch"], cwd=repo, check=True)
    subprocess.run(["git", "apply", "fix.patch"], cwd=repo, check=True)
    calc = (repo / "calc.py").read_text()
    assert "return a + b" in calc and "math.pi * r ** 2" in calc and "self.w * self.h" in calc
    assert '"hello " + name;' in (repo / "web/util.js").read_text()
    assert "if a > b {" in (repo / "main.go").read_text()
    assert "spark-ls check:" in result.stderr.splitlines()[-1]  # the one-line summary


def test_patch_applies_to_crlf_bom_unicode_and_unterminated_files(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "tail.py": b"def f(a, b):\n    return a - b",
        "win.py": "\ufeffdef g(a, b):\r\n    x = 1\r\n    return a - b\r\n".encode(),
        "uni.py": "def h(s):\n    return 'h\u00e9llo w\u00f6rld \u2713' + s - 1\n".encode(),
    })
    model = ScriptedModel(repo, fixes={"tail.py": [("a - b", "a + b")], "win.py": [("a - b", "a + b")],
                                       "uni.py": [("s - 1", "s")]})
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "tail.py", "win.py", "uni.py")
    assert result.returncode == 1, result.stderr
    (repo / "fix.patch").write_bytes(result.stdout.encode("utf-8"))
    subprocess.run(["git", "apply", "fix.patch"], cwd=repo, check=True)
    assert (repo / "tail.py").read_bytes() == b"def f(a, b):\n    return a + b"
    assert (repo / "win.py").read_bytes() == "\ufeffdef g(a, b):\r\n    x = 1\r\n    return a + b\r\n".encode()
    assert (repo / "uni.py").read_text(encoding="utf-8") == "def h(s):\n    return 'h\u00e9llo w\u00f6rld \u2713' + s\n"


def test_sarif_columns_count_code_points(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"uni.py": "def h(s):\n    return '\u00e9\u2713\U0001f600' + s - 1\n".encode()})
    model = ScriptedModel(repo, fixes={"uni.py": [("s - 1", "s")]})
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "uni.py", "--format", "sarif")
    log = json.loads(result.stdout)
    assert log["runs"][0]["columnKind"] == "unicodeCodePoints"
    fix = log["runs"][0]["results"][0]["fixes"][0]
    region = fix["artifactChanges"][0]["replacements"][0]["deletedRegion"]
    # "    return '" is 12 code points, the literal and its quote 4 more, " + s" 4 more: " - 1"
    # starts at column 21 (UTF-16 would say 22 because of the emoji, UTF-8 bytes 27).
    assert (region["startLine"], region["startColumn"], region["endColumn"]) == (2, 21, 25)
    assert _apply_sarif_fix((repo / "uni.py").read_text(), fix).endswith("+ s\n")


def test_sarif_is_valid_and_each_fix_applies_alone(repo: Path, endpoint: ModelEndpoint) -> None:
    result = run_check(repo, endpoint.base_url, "--format", "sarif")
    assert result.returncode == 1, result.stderr
    log = json.loads(result.stdout)
    jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(log)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "spark-ls"
    assert len(run["results"]) == 5
    for sarif_result in run["results"]:
        uri = sarif_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        path = urllib.parse.unquote(uri)
        original = (repo / path).read_text()
        changed = _apply_sarif_fix(original, sarif_result["fixes"][0])
        assert changed != original
        # Each fix alone equals the per-proposal diff's result: compare with git apply.
        scratch = repo / "scratch.patch"
        scratch.write_text(sarif_result["properties"]["diff"])
        applied = subprocess.run(["git", "apply", "--check", "scratch.patch"], cwd=repo, check=False)
        assert applied.returncode == 0
        region = sarif_result["locations"][0]["physicalLocation"]["region"]
        assert original.splitlines()[region["startLine"] - 1] != changed.splitlines()[region["startLine"] - 1]


def _apply_sarif_fix(text: str, fix: dict[str, Any]) -> str:
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    replacements = fix["artifactChanges"][0]["replacements"]
    for replacement in sorted(replacements, key=lambda r: (r["deletedRegion"]["startLine"],
                                                           r["deletedRegion"]["startColumn"]), reverse=True):
        region = replacement["deletedRegion"]
        start = offset(region["startLine"], region["startColumn"])
        end = offset(region["endLine"], region["endColumn"])
        text = text[:start] + replacement.get("insertedContent", {}).get("text", "") + text[end:]
    return text


def test_github_format_emits_escaped_annotations(repo: Path, endpoint: ModelEndpoint) -> None:
    result = run_check(repo, endpoint.base_url, "--format", "github")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("::warning file=") for line in lines)
    first = lines[0]
    match = re.match(r"::warning file=([^,]+),line=(\d+),endLine=(\d+),title=([^:]+)::(.*)$", first)
    assert match is not None, first
    assert match.group(1) == "calc.py" and match.group(2) == "6"
    message = match.group(5)
    assert "%0A" in message and "\n" not in message
    unescaped = message.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
    assert "-    return a - b\n+    return a + b" in unescaped


def test_json_output_is_identical_for_any_jobs(repo: Path, endpoint: ModelEndpoint) -> None:
    endpoint.first_token_delay = 0.05  # long enough for requests to overlap when they can
    serial = json_report(run_check(repo, endpoint.base_url, "--format", "json", "--jobs", "1"))
    serial_connections = endpoint.connections_opened
    parallel = json_report(run_check(repo, endpoint.base_url, "--format", "json", "--jobs", "8"))
    parallel_connections = endpoint.connections_opened - serial_connections
    assert serial_connections == 1  # --jobs is the model session's pool size
    assert 1 < parallel_connections <= 8
    assert _proposed(serial) == EXPECTED_SCOPES
    assert {k: v for k, v in serial.items() if k != "stats"} == {k: v for k, v in parallel.items() if k != "stats"}
    assert serial["refusals"] == []
    assert serial["summary"]["requests"] == 8  # every outermost function/method, once


def test_output_file(repo: Path, endpoint: ModelEndpoint, tmp_path: Path) -> None:
    target = tmp_path / "out.sarif"
    result = run_check(repo, endpoint.base_url, "--format", "sarif", "--output", str(target))
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads(target.read_text())["version"] == "2.1.0"


# ------------------------------------------------------------------ sharding


def test_union_of_shards_equals_the_full_run(repo: Path, endpoint: ModelEndpoint, model: ScriptedModel) -> None:
    full = json_report(run_check(repo, endpoint.base_url, "--format", "json"))
    full_requests = sorted(model.seen)
    model.seen.clear()
    shards = [json_report(run_check(repo, endpoint.base_url, "--format", "json", "--shard", f"{i}/3"))
              for i in (1, 2, 3)]
    key = lambda p: json.dumps(p, sort_keys=True)
    union = [key(p) for shard in shards for p in shard["proposals"]]
    assert len(union) == len(set(union))  # disjoint
    assert sorted(union) == sorted(key(p) for p in full["proposals"])
    assert sorted(model.seen) == full_requests  # every scope asked exactly once across shards


def test_shard_patches_applied_in_turn_equal_the_full_patch(repo: Path, endpoint: ModelEndpoint, tmp_path: Path) -> None:
    full = run_check(repo, endpoint.base_url).stdout
    shard_patches = [run_check(repo, endpoint.base_url, "--shard", f"{i}/3").stdout for i in (1, 2, 3)]
    assert sum(1 for p in shard_patches if p) >= 2  # the work really is split
    expected = make_repo(tmp_path / "expected")
    (expected / "full.patch").write_text(full)
    subprocess.run(["git", "apply", "full.patch"], cwd=expected, check=True)
    for index, patch in enumerate(shard_patches):
        if patch:
            (repo / f"shard{index}.patch").write_text(patch)
            subprocess.run(["git", "apply", f"shard{index}.patch"], cwd=repo, check=True)
    for name in ("calc.py", "main.go", "web/util.js"):
        assert (repo / name).read_text() == (expected / name).read_text(), name


# ------------------------------------------------------------------ exit codes and failures


def test_exit_0_when_nothing_is_proposed(repo: Path, endpoint: ModelEndpoint, model: ScriptedModel) -> None:
    model.fixes.clear()
    result = run_check(repo, endpoint.base_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "0 proposal(s)" in result.stderr


def test_key_in_a_checked_in_file_is_ignored(repo: Path, endpoint: ModelEndpoint) -> None:
    (repo / "pyproject.toml").write_text(f'[tool.spark-ls]\napi-key = "{TEST_API_KEY}"\n')
    result = run_check(repo, endpoint.base_url, env={"OPENAI_API_KEY": ""})
    assert result.returncode == 2  # no key from the environment: the endpoint refuses
    assert TEST_API_KEY not in result.stderr + result.stdout


def test_exit_2_on_bad_key_without_showing_it(repo: Path, endpoint: ModelEndpoint) -> None:
    wrong_key = "sk-wrong-key-DO-NOT-PRINT-0123456789"
    result = run_check(repo, endpoint.base_url, "--format", "json", env={"OPENAI_API_KEY": wrong_key})
    assert result.returncode == 2
    assert "auth" in result.stderr.lower()
    assert wrong_key not in result.stderr and wrong_key not in result.stdout
    assert json.loads(result.stdout)["errors"]


def test_a_failed_request_is_an_error_but_the_other_proposals_are_kept(repo: Path, endpoint: ModelEndpoint) -> None:
    endpoint.stall, endpoint.stall_times = True, 1  # the first request never finishes
    result = run_check(repo, endpoint.base_url, "--format", "json", "--jobs", "1", "calc.py",
                       env={"SPARK_LS_REQUEST_TIMEOUT": "0.5", "SPARK_LS_MAX_RETRIES": "0"})
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert [(r["scope"], r["kind"]) for r in report["refusals"]] == [("function:add:4", "model-error")]
    assert _proposed(report) == {("calc.py", "circle_area"), ("calc.py", "area")}
    assert "timeout" in report["errors"][0]
    assert result.stderr.splitlines()[-1].startswith("spark-ls check: error: calc.py:4")


@pytest.mark.parametrize(("args", "words"), [
    (["--action", "no-such-action"], "unknown action"),
    (["does/not/exist.py"], "no such file"),
    (["--shard", "4/3"], "--shard"),
    (["--language", "cobol"], "unknown language"),
    (["--changed-since", "no-such-ref"], "git diff failed"),
])
def test_exit_2_on_bad_input(repo: Path, endpoint: ModelEndpoint, args: list[str], words: str) -> None:
    result = run_check(repo, endpoint.base_url, *args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_refused_reply_is_reported_and_not_an_error(repo: Path, endpoint: ModelEndpoint, model: ScriptedModel) -> None:
    model.refuse = {"add"}
    result = run_check(repo, endpoint.base_url, "--format", "json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [(r["path"], r["scope"], r["kind"]) for r in report["refusals"]] == [("calc.py", "function:add:4", "refused")]
    assert ("calc.py", "add") not in _proposed(report)
    assert "refused" in result.stderr and "calc.py" in result.stderr
    sarif = json.loads(run_check(repo, endpoint.base_url, "--format", "sarif").stdout)
    notes = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("refused" in n["message"]["text"] for n in notes)
    jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(sarif)


# ------------------------------------------------------------------ selection


def test_changed_since_runs_only_touched_scopes(repo: Path, endpoint: ModelEndpoint, model: ScriptedModel) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    calc = (repo / "calc.py").read_text().replace(
        "    return math.pi * r * 2", "    # area of a circle\n    return math.pi * r * 2")
    (repo / "calc.py").write_text(calc)
    git(repo, "commit", "-qam", "touch circle_area")
    (repo / "web" / "util.js").write_text((repo / "web" / "util.js").read_text().replace("x * 2", "x * 2 "))
    result = run_check(repo, endpoint.base_url, "--format", "json", "--changed-since", "main")
    assert result.returncode == 1, result.stderr
    assert sorted(model.seen) == [("calc.py", "circle_area"), ("web/util.js", "double")]
    assert _proposed(json.loads(result.stdout)) == {("calc.py", "circle_area")}


def test_language_filter(repo: Path, endpoint: ModelEndpoint, model: ScriptedModel) -> None:
    result = run_check(repo, endpoint.base_url, "--format", "json", "--language", "go")
    assert _proposed(json.loads(result.stdout)) == {("main.go", "Max")}
    assert {path for path, _ in model.seen} == {"main.go"}


def test_binary_and_invalid_utf8_files_are_skipped_with_a_message(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "blob.py": b"def f():\n    return 1\n\x00\x00\x00",
        "latin1.py": "def f():\n    return 'caf\u00e9'\n".encode("latin-1"),
    })
    model = ScriptedModel(repo)
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "--format", "json")
    assert result.returncode == 1, result.stderr
    assert "blob.py: binary file" in result.stderr
    assert "latin1.py: not valid UTF-8" in result.stderr
    report = json.loads(result.stdout)
    assert {s["path"] for s in report["skipped"]} == {"blob.py", "latin1.py"}
    assert _proposed(report) == EXPECTED_SCOPES


def test_instruction_and_user_defined_action(repo: Path, endpoint: ModelEndpoint) -> None:
    (repo / "pyproject.toml").write_text(
        '[tool.spark-ls]\nactions = [{id = "shout", title = "Shout {name}", '
        'instruction = "Make {kind} `{name}` LOUDER", languages = ["python"]}]\n'
    )
    result = run_check(repo, endpoint.base_url, "--format", "json", "--action", "shout",
                       "--instruction", "Rename every variable to snake_case")
    assert result.returncode == 1, result.stderr
    tasks = [input_text(body.get("input")).rsplit("Task:", 1)[-1] for body in endpoint.requests]
    # python only; a user action takes functions, methods and classes unless it says otherwise
    assert sum("LOUDER" in t for t in tasks) == 5
    assert sum("Rename every variable to snake_case" in t for t in tasks) == 8  # every language
    report = json.loads(result.stdout)
    # Both actions get the same fix from the scripted model, but one function gets at most one
    # proposal per run: the first action in plan order (shout, Python only) wins, and the
    # instruction's proposal for the same function is reported as a conflict naming it.
    scopes = [(p["path"], p["scope_name"]) for p in report["proposals"]]
    assert len(scopes) == len(set(scopes))
    assert ("shout", "add") in {(p["action"], p["scope_name"]) for p in report["proposals"]}
    assert {p["scope_name"] for p in report["proposals"] if p["action"] == "instruction"} == {"greet", "Max"}
    superseded = [r for r in report["refusals"] if r["action"] == "instruction"]
    assert {r["kind"] for r in superseded} == {"conflict"} and len(superseded) == 3
    assert all("kept the shout proposal" in r["reason"] for r in superseded)


def test_two_actions_on_one_scope_conflict_is_reported(repo: Path, endpoint: ModelEndpoint, model: ScriptedModel) -> None:
    def reply(body: dict[str, Any]) -> str:
        # "simplify" rewrites the very lines fix-bug changes, differently: an overlap.
        diff = model(body)
        if "Simplify" in input_text(body.get("input")):
            diff = re.sub(r"^(\+(?!\+\+).*)$", r"\1  # simpler", diff, flags=re.MULTILINE)
        return diff

    endpoint.reply_for = reply
    result = run_check(repo, endpoint.base_url, "--format", "json", "--action", "fix-bug,simplify", "calc.py")
    report = json.loads(result.stdout)
    assert {p["action"] for p in report["proposals"]} == {"fix-bug"}
    conflicts = [r for r in report["refusals"] if r["kind"] == "conflict"]
    assert {r["action"] for r in conflicts} == {"simplify"} and len(conflicts) == 3
    patch = run_check(repo, endpoint.base_url, "--action", "fix-bug,simplify", "calc.py").stdout
    (repo / "p.patch").write_text(patch)
    subprocess.run(["git", "apply", "--check", "p.patch"], cwd=repo, check=True)


# ------------------------------------------------------------------ diagnostics


def _lint_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "lint_me.py": b"def check(x):\n    if x == None:\n        return 1\n    return 0\n",
    })


@pytest.mark.parametrize("output_format", ["json", "sarif"])
def test_ruff_findings_each_get_a_fix(tmp_path: Path, output_format: str) -> None:
    repo = _lint_repo(tmp_path)
    lint = subprocess.run(["ruff", "check", "--no-cache", "--isolated", "--select", "E711",
                           "--output-format", output_format, "."], cwd=repo, capture_output=True, text=True, check=False)
    assert "E711" in lint.stdout
    findings = tmp_path / f"ruff.{output_format}"
    findings.write_text(lint.stdout)
    model = ScriptedModel(repo, fixes={"lint_me.py": [("x == None", "x is None")]})
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "--format", "json", "--diagnostics", str(findings))
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [(p["path"], p["action"], p["rule_id"], p["start_line"]) for p in report["proposals"]] == [
        ("lint_me.py", "fix-diagnostic", "E711", 2),
    ]
    assert "x is None" in report["proposals"][0]["diff"]
    assert {path for path, _ in model.seen} == {"lint_me.py"}  # only findings: no fix-bug sweep


def test_syntax_errors_get_a_fix(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"broken.py": b"def f(x:\n    return x\n"})
    model = ScriptedModel(repo, fixes={"broken.py": [("def f(x:", "def f(x):")]})
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "--format", "json", "--action", "simplify", "broken.py")
        skipped = run_check(repo, ep.base_url, "--format", "json", "--action", "simplify",
                            "--no-syntax-errors", "broken.py")
    report = json.loads(result.stdout)
    assert [(p["action"], p["rule_id"]) for p in report["proposals"]] == [("fix-diagnostic", "syntax-error")]
    assert "def f(x):" in report["proposals"][0]["diff"]
    assert json.loads(skipped.stdout)["proposals"] == []


# ------------------------------------------------------------------ --fix


def test_fix_writes_in_place_keeping_bom_crlf_and_mode(tmp_path: Path) -> None:
    crlf_bom = "\ufeffdef add(a, b):\r\n    return a - b\r\n".encode("utf-8")
    repo = make_repo(tmp_path / "repo", {"win.py": crlf_bom})
    (repo / "main.go").chmod(0o750)
    model = ScriptedModel(repo)
    model.fixes["win.py"] = [("return a - b", "return a + b")]
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "--fix", "--format", "json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["written"] == ["calc.py", "main.go", "web/util.js", "win.py"]
    assert (repo / "win.py").read_bytes() == "\ufeffdef add(a, b):\r\n    return a + b\r\n".encode("utf-8")
    assert (repo / "main.go").stat().st_mode & 0o777 == 0o750
    assert (repo / "calc.py").read_text() == CALC_PY.replace("a - b", "a + b").replace(
        "r * 2", "r ** 2").replace("self.w + self.h", "self.w * self.h")
    assert not list(repo.rglob(".spark-ls-fix-*"))
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=ScriptedModel(repo)) as ep:
        again = run_check(repo, ep.base_url)
    assert again.returncode == 0  # nothing left to fix


def test_fix_never_writes_through_an_escaping_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / "calc.py"
    victim.write_text(CALC_PY)
    repo = make_repo(tmp_path / "repo")
    (repo / "linked.py").symlink_to(victim)
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=ScriptedModel(repo)) as ep:
        result = run_check(repo, ep.base_url, "--fix")
    assert result.returncode == 1
    assert "linked.py: symlink points outside" in result.stderr
    assert victim.read_text() == CALC_PY


# ------------------------------------------------------------------ record / replay


def test_record_then_replay_without_an_endpoint(repo: Path, endpoint: ModelEndpoint, tmp_path: Path) -> None:
    cassette = tmp_path / "replies.jsonl"
    recorded = run_check(repo, endpoint.base_url, "--format", "sarif", "--record", str(cassette))
    assert TEST_API_KEY not in cassette.read_text()
    replayed = run_check(repo, "http://127.0.0.1:9", "--format", "sarif", "--replay", str(cassette))
    assert recorded.returncode == replayed.returncode == 1, replayed.stderr
    strip = lambda log: [r["fixes"] for r in json.loads(log)["runs"][0]["results"]]
    assert strip(recorded.stdout) == strip(replayed.stdout)


# ------------------------------------------------------------------ shipped integration files


def _documented_check_commands(text: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for match in re.finditer(r"spark-ls check([^\n|]*)", joined):
        words = shlex.split(match.group(1).split("||")[0].replace("${{ github.base_ref }}", "main"))
        commands.append(words)
    return commands


@pytest.mark.parametrize("relative", ["action.yml", ".pre-commit-hooks.yaml", "docs/ci.md"])
def test_shipped_commands_use_real_options(relative: str) -> None:
    from spark_ls.cli import build_parser

    commands = _documented_check_commands((REPO_ROOT / relative).read_text())
    assert commands, relative
    parser = build_parser()
    for words in commands:
        args = parser.parse_args(["check", *words])
        assert args.format in ("diff", "sarif", "github", "json")


def test_missing_replay_file_is_an_error_not_a_crash(repo: Path, tmp_path: Path) -> None:
    result = run_check(repo, None, "--replay", str(tmp_path / "missing.jsonl"), "--format", "json")
    assert result.returncode == 2
    assert "missing.jsonl" in result.stderr and "internal error" not in result.stderr
    assert json.loads(result.stdout)["errors"]


def test_fix_refuses_a_file_edited_during_the_run(repo: Path, model: ScriptedModel) -> None:
    def edit_while_running(body: dict[str, Any]) -> str:
        reply = model(body)
        util = repo / "web" / "util.js"
        if "someone else" not in util.read_text():  # appended: the model's fixes still apply
            util.write_text(util.read_text() + "// edited by someone else\n")
        return reply

    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=edit_while_running) as ep:
        result = run_check(repo, ep.base_url, "--fix", "--format", "json")
    assert result.returncode == 2
    assert "changed on disk" in result.stderr
    assert (repo / "calc.py").read_text() == CALC_PY  # nothing written, not even the other files
    assert json.loads(result.stdout)["written"] == []
