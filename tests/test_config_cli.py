"""The command line: `spark-ls config`, logging options, help texts, check's messages and
--show-prompt, the README's ruff recipe, and `spark-ls models` against `spark-ls model-server`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from check_helpers import REPO_ROOT, ScriptedModel, make_repo, run_check
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint

from spark_ls import cli
from spark_ls.config import FIELDS, Settings


def _spark(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "spark_ls", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=60, check=False)


# ------------------------------------------------------------------ spark-ls config


def test_config_prints_each_setting_with_its_source(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.spark-ls]\ncontext-budget = 3000\nprefetch = false\ntls_verify = false\n'
    )
    result = _spark("config", str(tmp_path), "--transport", "chat",
                    cwd=tmp_path, env={"SPARK_LS_MODEL": "gpt-4.1", "OPENAI_API_KEY": TEST_API_KEY})
    assert result.returncode == 1  # tls_verify was refused: a problem
    lines = {line.split("=")[0].strip(): line for line in result.stdout.splitlines() if not line.startswith("#")}
    assert set(lines) == set(FIELDS)
    where = f"{tmp_path / 'pyproject.toml'} [tool.spark-ls]"
    assert re.fullmatch(r'model += "gpt-4\.1" +# environment \(SPARK_LS_MODEL\)', lines["model"])
    assert re.fullmatch(rf"context_budget += 3000 +# {re.escape(where)}", lines["context_budget"])
    assert re.fullmatch(rf"prefetch += false +# {re.escape(where)}", lines["prefetch"])
    assert re.fullmatch(r'transport += "chat" +# command line', lines["transport"])
    assert re.fullmatch(r"tls_verify += true +# default", lines["tls_verify"])
    assert re.fullmatch(r'api_key += "\*\*\*" +# environment \(OPENAI_API_KEY\)', lines["api_key"])
    assert TEST_API_KEY not in result.stdout + result.stderr
    assert f"# config file: {where}" in result.stdout
    assert f"spark-ls config: warning: {where}: ignoring tls_verify" in result.stderr


def test_config_json_and_a_clean_folder(tmp_path: Path) -> None:
    result = _spark("config", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["workspace"] == str(tmp_path.resolve()) and out["config_file"] is None and out["problems"] == []
    assert out["settings"]["pool_size"] == {"value": 2, "source": "default"}
    assert out["settings"]["fallback_models"] == {"value": [], "source": "default"}
    assert {name: s["value"] for name, s in out["settings"].items()} == {
        name: (list(v) if isinstance(v, tuple) else v) for name, v in vars(Settings()).items()
    }


def test_config_schema_is_the_committed_one(tmp_path: Path) -> None:
    result = _spark("config", "--schema", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == (REPO_ROOT / "docs" / "settings.schema.json").read_text("utf-8")


def test_config_reports_unknown_keys_and_bad_values(tmp_path: Path) -> None:
    (tmp_path / "spark-ls.toml").write_text('diagnosticsDebounce = 0.1\npool_size = "two"\nmodle = "x"\n')
    result = _spark("config", "--json", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["settings"]["diagnostics_debounce"]["value"] == 0.1
    assert out["settings"]["pool_size"] == {"value": 2, "source": "default"}
    where = str(tmp_path / "spark-ls.toml")
    assert out["problems"] == [
        f"{where}: setting 'pool_size': expected a whole number, got 'two'; using 2 (the default)",
        f"{where}: unknown setting 'modle' (did you mean 'model'?); ignored",
    ]
    assert all(p in result.stderr for p in out["problems"])


# ------------------------------------------------------------------ logging options and help


def test_log_options_are_accepted_before_and_after_the_subcommand() -> None:
    parser = cli.build_parser()
    after = parser.parse_args(["--log-level", "ERROR", "check", "--log-level", "DEBUG", "--log-file", "x.log"])
    assert (after.log_level, after.log_file) == ("DEBUG", "x.log")  # the subcommand's value wins
    before = parser.parse_args(["--log-level", "ERROR", "--log-file", "y.log", "models"])
    assert (before.log_level, before.log_file) == ("ERROR", "y.log")
    default = parser.parse_args(["config"])
    assert default.log_file is None and default.log_level == os.environ.get("SPARK_LS_LOG", "WARNING")


def test_log_file_receives_the_log_and_stderr_does_not(tmp_path: Path) -> None:
    log_file = tmp_path / "spark.log"
    code = cli.main(["config", str(tmp_path), "--log-level", "DEBUG", "--log-file", str(log_file)])
    assert code == 0
    import logging

    logging.getLogger("spark_ls.test").warning("hello from the test")
    logging.getLogger().handlers[0].flush()
    assert "spark_ls.test WARNING hello from the test" in log_file.read_text()
    assert cli.main(["config", str(tmp_path), "--log-file", str(tmp_path / "missing" / "x.log")]) == 2


def test_help_texts() -> None:
    check_help = cli.build_parser()._subparsers._group_actions[0].choices["check"].format_help()  # type: ignore[union-attr]
    assert "exit codes:" in check_help and "0  nothing proposed" in check_help and "2  errors" in check_help
    assert "ruff check --exit-zero --output-format json" in check_help
    flat = " ".join(check_help.split())
    assert "how to reach the model: ws" in flat and "how the model writes edits: diff" in flat
    assert "file by file" not in flat and "nothing is written if any file is refused" in flat
    assert "--show-prompt" in flat and "--log-file FILE" in flat
    server_help = " ".join(
        cli.build_parser()._subparsers._group_actions[0].choices["model-server"].format_help().split()  # type: ignore[union-attr]
    )
    assert "--listen HOST:PORT address to listen on" in server_help


def test_model_server_prints_how_to_connect(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import spark_ls.model_server.server as server_module

    async def fake_serve(settings: Settings, *, host: str, port: int, allow_remote: bool, ready) -> None:
        ready(f"http://{host}:{port or 41234}/v1")

    monkeypatch.setattr(server_module, "serve_model_server", fake_serve)
    assert cli.main(["model-server", "--listen", "127.0.0.1:0"]) == 0
    out = capsys.readouterr().out
    assert "spark-ls model-server listening on http://127.0.0.1:41234/v1" in out
    assert "use it with: OPENAI_BASE_URL=http://127.0.0.1:41234/v1 SPARK_LS_EDIT_FORMAT=scope" in out


# ------------------------------------------------------------------ check: messages, prompts, recipes


def test_check_names_skipped_files_once(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "latin1.py": "x = 'caf\u00e9'\n".encode("latin-1"),
        "notes.txt": b"just text\n",
    })
    result = run_check(repo, "http://127.0.0.1:9/v1", "--format", "github", "latin1.py", "notes.txt")
    assert result.returncode == 0, result.stderr
    assert "spark-ls check: latin1.py: not valid UTF-8 (byte 8: invalid continuation byte); skipped\n" in result.stderr
    assert "spark-ls check: notes.txt: not a source file spark-ls knows (by its extension); skipped\n" in result.stderr
    assert "skipped: not valid UTF-8 (byte 8: invalid continuation byte)\n" in result.stdout
    assert "; skipped" not in result.stdout
    # A directory sweep stays quiet about files it does not handle.
    swept = run_check(repo, "http://127.0.0.1:9/v1", "--replay", os.devnull, ".")
    assert "notes.txt" not in swept.stderr


@pytest.mark.parametrize("log_first", [False, True])
def test_show_prompt_and_debug_log_show_the_prompt_sent(tmp_path: Path, log_first: bool) -> None:
    repo = make_repo(tmp_path / "repo", {"only.py": b"def add(a, b):\n    return a - b  # see sk-proj-abcdefgh12345678\n"})
    model = ScriptedModel(repo, fixes={"only.py": [("a - b", "a + b")]})
    log_file = tmp_path / "debug.log"
    logging = ["--log-level", "DEBUG", "--log-file", str(log_file)]
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        if log_first:  # `spark-ls --log-level DEBUG --log-file F check ...`
            result = _spark(*logging, "check", "--show-prompt", "--base-url", ep.base_url, "only.py", cwd=repo,
                            env={"OPENAI_API_KEY": TEST_API_KEY})
        else:
            result = run_check(repo, ep.base_url, "--show-prompt", *logging, "only.py")
    assert result.returncode == 1, result.stderr
    shown = result.stderr.split("spark-ls check: prompt sent to gpt-5.3-codex-spark:\n", 1)[1]
    assert shown.startswith("--- instructions\n") and "--- input\n" in shown
    assert "def add(a, b):" in shown and "return a - b" in shown
    sent = json.dumps(ep.requests)
    assert "return a - b" in sent
    assert "# see ***" in shown
    assert "abcdefgh12345678" not in shown and TEST_API_KEY not in result.stderr
    log = log_file.read_text()
    assert "spark_ls.model.session DEBUG prompt sent to gpt-5.3-codex-spark:\n--- instructions\n" in log
    assert TEST_API_KEY not in log and "abcdefgh12345678" not in log
    # Without the options, no prompt is shown.
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=ScriptedModel(repo, fixes={"only.py": [("a - b", "a + b")]})) as ep:
        quiet = run_check(repo, ep.base_url, "only.py")
    assert "prompt sent" not in quiet.stderr


def _readme_ruff_recipe() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    lines = [line.strip() for line in readme.splitlines() if "ruff check" in line and "--diagnostics" in line]
    assert len(lines) == 1, lines
    return lines[0].split("#")[0].strip()


def test_readme_ruff_recipe_runs_spark_ls_when_ruff_finds_something(tmp_path: Path) -> None:
    recipe = _readme_ruff_recipe()
    assert "--exit-zero" in recipe
    # F841 is one of ruff's default rules.
    repo = make_repo(tmp_path / "repo", {"lint_me.py": b"def check(x):\n    unused = x + 1\n    return x\n"})
    (repo / "bin").mkdir()
    shim = repo / "bin" / "spark-ls"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m spark_ls \"$@\"\n")
    shim.chmod(0o755)
    model = ScriptedModel(repo, fixes={"lint_me.py": [("    unused = x + 1\n", "")]})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
    env.update(PATH=f"{repo / 'bin'}{os.pathsep}{env['PATH']}", PYTHONPATH=str(REPO_ROOT),
               OPENAI_API_KEY=TEST_API_KEY, RUFF_NO_CACHE="true")
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        env["OPENAI_BASE_URL"] = ep.base_url
        result = subprocess.run(["sh", "-c", recipe], cwd=repo, env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        # The recipe as it was (without --exit-zero) never reaches spark-ls.
        old = subprocess.run(["sh", "-c", recipe.replace(" --exit-zero", "")], cwd=repo, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stderr  # proposals made
    assert "-    unused = x + 1\n" in result.stdout and "F841" in (repo / "ruff.json").read_text()
    assert old.returncode == 1 and old.stdout == "" and "proposal" not in old.stderr


# ------------------------------------------------------------------ models against the model-server


@pytest.mark.asyncio
async def test_models_against_the_model_server_reports_the_configured_models_available(tmp_path: Path) -> None:
    from model_backends import ScriptedBackend

    from spark_ls.model_server.server import serve_model_server

    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_model_server(Settings(), backend=ScriptedBackend(), ready=ready.set_result))
    base_url = await asyncio.wait_for(ready, 10)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
        env["PYTHONPATH"] = str(REPO_ROOT)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "spark_ls", "models", "--base-url", base_url, "--fallback-models", "gpt-4.1",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        scoped = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "spark_ls", "models", "--base-url", base_url, "--edit-format", "scope",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        scoped_out, _ = await asyncio.wait_for(scoped.communicate(), 60)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert proc.returncode == 0, err.decode()
    rows = out.decode().splitlines()
    assert rows[1].split()[:3] == ["gpt-5.3-codex-spark", "model", "available"]
    assert rows[2].split()[:3] == ["gpt-4.1", "fallback", "available"]
    assert "missing" not in out.decode()
    assert "answered by spark-ls model-server (scripted-local) (set edit_format = scope" in rows[1]
    assert "set edit_format" not in scoped_out.decode()


def test_check_warns_about_settings_and_still_runs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {
        "pyproject.toml": b'[tool.spark-ls]\ncontext_budget = "big"\nbase_url = "https://elsewhere.example/v1"\n'
                          b'[[tool.spark-ls.actions]]\nid = "shout"\ntitle = "Shout {name}"\ninstruction = "x"\n'
                          b'[[tool.spark-ls.actions]]\nid = "broken"\ntitle = "Broken"\n',
    })
    model = ScriptedModel(repo)
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=model) as ep:
        result = run_check(repo, ep.base_url, "--action", "shout", "--format", "json", "calc.py")
    assert result.returncode == 1, result.stderr  # the user action ran and proposed fixes
    where = f"{repo / 'pyproject.toml'} [tool.spark-ls]"
    assert (f"spark-ls check: warning: {where}: setting 'context_budget': expected a whole number, got 'big'; "
            "using 2000 (the default)") in result.stderr
    assert f"spark-ls check: warning: {where}: ignoring base_url" in result.stderr
    assert "action 'broken': missing key 'instruction'" in result.stderr
    assert {p["action"] for p in json.loads(result.stdout)["proposals"]} == {"shout"}
