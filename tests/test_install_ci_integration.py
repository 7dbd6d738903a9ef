"""CI integration as users wire it: the GitHub Action (action.yml + .github/action/run.sh), the
example workflow, and the pre-commit hooks (.pre-commit-hooks.yaml + spark_ls.precommit).

GitHub's runner cannot run here, so the action's check step (run.sh) is run as the composite
step runs it: the same INPUT_* environment, $GITHUB_OUTPUT, a repository whose base branch is
``origin/main``, the real ``spark-ls`` and the fake model endpoint (real wire protocol). The YAML
around it is checked for structure and for passing every input through.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint

from spark_ls.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
RUN_SH = ROOT / ".github" / "action" / "run.sh"
EXAMPLE = ROOT / ".github" / "examples" / "spark-ls.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"

BUGGY = (ROOT / "examples" / "buggy.py").read_text()
FIXED = BUGGY.replace("range(len(numbers) - 1)", "range(len(numbers))")
FIX = "".join(
    difflib.unified_diff(
        BUGGY.splitlines(True), FIXED.splitlines(True), "a/buggy.py", "b/buggy.py"
    )
)


def _spark_ls_bin() -> Path:
    for candidate in (
        Path(sys.executable).parent / "spark-ls",
        shutil.which("spark-ls"),
    ):
        if candidate and Path(candidate).exists():
            return Path(candidate).parent
    pytest.fail("`spark-ls` is not installed for this interpreter", pytrace=False)


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SPARK_LS_", "INPUT_", "GITHUB_"))
    }
    env["PATH"] = f"{_spark_ls_bin()}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _pull_request(tmp_path: Path) -> Path:
    """A repository whose base branch is origin/main and whose branch touched average()."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "buggy.py").write_text(
        BUGGY.replace("    total = 0\n", "    total = 0.0\n")
    )
    (repo / "other.py").write_text("def untouched(x):\n    return x - 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    _git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    _git(repo, "checkout", "-qb", "feature")
    (repo / "buggy.py").write_text(BUGGY)
    _git(repo, "commit", "-qam", "feature")
    return repo


def _outputs(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line
    )


# ----- the action ----------------------------------------------------------------------------------


def test_action_yml_is_a_composite_action_passing_every_input() -> None:
    action = yaml.safe_load(ACTION.read_text())
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    for name in (
        "actions",
        "format",
        "shard",
        "verify",
        "changed-since",
        "openai-api-key",
        "local-model",
    ):
        assert name in inputs and inputs[name]["description"], name
    steps = action["runs"]["steps"]
    install = next(s for s in steps if s.get("name", "").startswith("Install spark-ls"))
    # Installed from the action's own checkout: works without a package-index release.
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert 'pip install --disable-pip-version-check --quiet "$spec"' in install["run"]
    check = next(s for s in steps if s.get("id") == "check")
    assert check["run"] == 'bash "${{ github.action_path }}/.github/action/run.sh"'
    # Every INPUT_* that run.sh reads is set from an input of the same name.
    read = set(re.findall(r"INPUT_[A-Z_]+", RUN_SH.read_text()))
    assert read <= set(check["env"]), read - set(check["env"])
    for var, value in check["env"].items():
        if var.startswith("INPUT_") and var != "INPUT_OUTPUT_DIR":
            name = var.removeprefix("INPUT_").lower().replace("_", "-")
            assert value == "${{ inputs." + name + " }}", (var, value)
    uses = [s["uses"] for s in steps if "uses" in s]
    assert "github/codeql-action/upload-sarif@v4" in uses
    assert not any("upload-sarif@v3" in u for u in uses)


def test_example_workflow_uses_the_action_and_never_runs_here() -> None:
    workflows = ROOT / ".github" / "workflows"
    active = list(workflows.glob("*.y*ml")) if workflows.exists() else []
    for wf in (
        active
    ):  # nothing in this repository runs the model check on its own pull requests
        assert (
            "spark-ls/spark-ls@" not in wf.read_text()
            and "spark-ls check" not in wf.read_text()
        ), wf
    example = yaml.safe_load(EXAMPLE.read_text())
    steps = example["jobs"]["check"]["steps"]
    assert (
        steps[0]["uses"] == "actions/checkout@v4"
        and steps[0]["with"]["fetch-depth"] == 0
    )
    assert steps[1]["uses"].startswith("spark-ls/spark-ls@")
    assert steps[1]["with"]["openai-api-key"] == "${{ secrets.OPENAI_API_KEY }}"
    assert example["permissions"]["security-events"] == "write"


@pytest.mark.slow
def test_action_step_checks_the_pull_request_once_and_replays_the_other_formats(
    tmp_path: Path,
) -> None:
    repo = _pull_request(tmp_path)
    out = tmp_path / "github_output"
    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.replies.append(FIX)
        env = _env(
            OPENAI_API_KEY=TEST_API_KEY,
            OPENAI_BASE_URL=ep.base_url,
            GITHUB_OUTPUT=str(out),
            GITHUB_BASE_REF="main",
            INPUT_FORMAT="sarif, github ,diff,json",
            INPUT_CHANGED_SINCE="auto",
            INPUT_JOBS="2",
        )
        done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
            ["bash", str(RUN_SH)],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        calls = list(ep.calls)
    report = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, report  # proposals are advice: the step succeeds
    outputs = _outputs(out)
    assert outputs["status"] == "1", (outputs, report)
    # One model call for the whole run (only average() changed, other.py is untouched); the
    # github, diff and json formats were replays of the recording.
    assert len(calls) == 1, report
    results = repo / "spark-ls-results"
    assert outputs["sarif"] == "spark-ls-results/spark-ls.sarif"
    sarif = json.loads((repo / outputs["sarif"]).read_text())
    (result,) = sarif["runs"][0]["results"]
    assert result["fixes"], result
    assert "::warning file=buggy.py" in done.stdout, report
    patch = (repo / outputs["patch"]).read_text()
    assert "+    for i in range(len(numbers)):" in patch
    assert json.loads((results / "spark-ls.json").read_text())["proposals"]
    _git(repo, "apply", "--check", str(repo / outputs["patch"]))


def test_action_step_skips_without_a_key(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        ["bash", str(RUN_SH)],
        cwd=tmp_path,
        env=_env(GITHUB_OUTPUT=str(out)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "::notice title=spark-ls::skipped: no OPENAI_API_KEY" in done.stdout
    assert _outputs(out) == {"status": "skipped"}


def test_action_step_maps_inputs_to_check_arguments(tmp_path: Path) -> None:
    """Action set, shard and --verify reach `spark-ls check` as arguments (a stand-in records them)."""
    stub = tmp_path / "bin"
    stub.mkdir()
    log = tmp_path / "argv.jsonl"
    (stub / "spark-ls").write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\nsys.exit(1)\n"
    )
    (stub / "spark-ls").chmod(0o755)
    out = tmp_path / "github_output"
    env = _env(
        OPENAI_API_KEY="k",
        GITHUB_OUTPUT=str(out),
        INPUT_PATHS="src lib",
        INPUT_ACTIONS="fix-bug,simplify",
        INPUT_SHARD="2/4",
        INPUT_VERIFY="pytest -x -q",
        INPUT_FORMAT="sarif,diff",
        INPUT_CHANGED_SINCE="origin/develop",
        INPUT_MODEL="gpt-5-mini",
    )
    env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        ["bash", str(RUN_SH)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    common = [
        "check", "src", "lib", "--action", "fix-bug,simplify", "--shard", "2/4", "--verify", "pytest -x -q",
        "--model", "gpt-5-mini", "--changed-since", "origin/develop", "--jobs", "8",
    ]  # fmt: skip
    assert first == [*common, "--format", "sarif", "--output", "spark-ls-results/spark-ls.sarif",
                     "--record", "spark-ls-results/spark-ls.replies.jsonl"]  # fmt: skip
    assert second == [*common, "--format", "diff", "--output", "spark-ls-results/spark-ls.patch",
                      "--quiet", "--replay", "spark-ls-results/spark-ls.replies.jsonl"]  # fmt: skip
    assert _outputs(out) == {
        "suffix": "-2-of-4",
        "sarif": "spark-ls-results/spark-ls.sarif",
        "patch": "spark-ls-results/spark-ls.patch",
        "status": "1",
    }


# ----- pre-commit ----------------------------------------------------------------------------------


def test_pre_commit_hooks_run_the_checked_entry_point() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load(HOOKS.read_text())}
    assert set(hooks) == {
        "spark-ls",
        "spark-ls-fix",
        "spark-ls-local",
        "spark-ls-fix-local",
    }
    local_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["local"]
    for hook_id, hook in hooks.items():
        assert hook["language"] == "python"
        assert hook["entry"].startswith(
            "python -m spark_ls.precommit --changed-since HEAD --quiet"
        )
        assert ("--fix" in hook["entry"]) == ("-fix" in hook_id)
        # What follows the module is `spark-ls check`'s own command line.
        args = build_parser().parse_args(["check", *hook["entry"].split()[3:]])
        assert args.changed_since == "HEAD" and args.quiet and args.format == "diff"
        # The -local hooks install exactly the `local` extra into pre-commit's environment.
        assert hook.get("additional_dependencies", []) == (
            local_extra if hook_id.endswith("-local") else []
        )


def _changed_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "buggy.py").write_text(
        BUGGY.replace("    total = 0\n", "    total = 0.0\n")
    )
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base")
    (repo / "buggy.py").write_text(BUGGY)  # the staged change pre-commit would check
    return repo


def test_pre_commit_without_a_model_says_how_to_get_one(tmp_path: Path) -> None:
    repo = _changed_repo(tmp_path)
    # No key, no endpoint, and the local model's runtime missing (as in pre-commit's own venv,
    # where the repository is installed without extras).
    code = (
        "import sys; sys.modules['xllamacpp'] = None\n"
        "from spark_ls.precommit import main\n"
        "raise SystemExit(main(['--changed-since', 'HEAD', '--quiet', '--format', 'diff', 'buggy.py']))"
    )
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        [sys.executable, "-c", code],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    message = done.stderr
    assert "no model to ask" in message
    assert "export OPENAI_API_KEY=" in message and "OPENAI_BASE_URL" in message
    assert "`spark-ls-local`" in message and "SKIP=spark-ls git commit" in message
    assert "xllamacpp" in message


def test_pre_commit_with_an_endpoint_runs_the_check(tmp_path: Path) -> None:
    repo = _changed_repo(tmp_path)
    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.replies.append(FIX)
        done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
            [
                sys.executable,
                "-m",
                "spark_ls.precommit",
                "--changed-since",
                "HEAD",
                "--quiet",
                "--format",
                "diff",
                "buggy.py",
            ],
            cwd=repo,
            env=_env(OPENAI_API_KEY=TEST_API_KEY, OPENAI_BASE_URL=ep.base_url),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, (
        done.stderr
    )  # proposals made: the hook fails and shows them
    assert "+    for i in range(len(numbers)):" in done.stdout
