"""Editor configurations other than Neovim (editors/emacs, helix, zed, sublime).

- Emacs: a real client. Debian's Emacs + eglot (installed by editors/emacs/setup-tests.sh)
  runs in batch mode against the real `spark-ls serve` and the fake model endpoint, with the
  shipped spark-ls.el: a code action picked from eglot's menu and `M-x spark-ls-edit`, saved and
  compared on disk.
- Helix, Zed, Sublime Text cannot be installed from the registries CI reaches; their files are
  checked for structure, for settings spark-ls accepts (spark_ls.config), against the commands the
  real server advertises, and (Sublime) by running the edit command's plugin code with a stand-in
  for Sublime's modules.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text
from nvim_helpers import (
    BUGGY,
    EDITED,
    FIXED,
    INSTRUCTION,
    reply_by_task,
    udiff,
    workspace,
)

from spark_ls.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
EDITORS = ROOT / "editors"
SETTING_NAMES = set(Settings.__dataclass_fields__)
INSTALL_HINT = "run editors/emacs/setup-tests.sh (apt: emacs-nox elpa-eglot) before the tests"


def server_cmd() -> list[str]:
    return [sys.executable, "-m", "spark_ls", "--log-level", "INFO", "serve"]


def check_init_options(options: dict[str, Any]) -> Settings:
    """Every key is a spark-ls setting, and spark-ls's config layer accepts the values."""
    unknown = set(options) - SETTING_NAMES
    assert not unknown, f"not spark-ls settings: {sorted(unknown)}"
    settings = load_settings(None, options, environ={})
    for key, value in options.items():
        got = getattr(settings, key)
        want = tuple(value) if isinstance(value, list) else value
        assert got == want, f"{key}: configured {value!r}, spark-ls read {got!r}"
    return settings


# ---------------------------------------------------------------------------------- LSP probe


def _send(proc: subprocess.Popen, msg: dict[str, Any]) -> None:
    body = json.dumps(msg).encode()
    assert proc.stdin is not None
    proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    proc.stdin.flush()


def _receive(proc: subprocess.Popen) -> dict[str, Any]:
    assert proc.stdout is not None
    length = None
    while True:
        line = proc.stdout.readline()
        assert line, "spark-ls closed its stdout"
        line = line.strip()
        if not line:
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None
    return json.loads(proc.stdout.read(length))


def initialize_result(init_options: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Start `spark-ls serve`, initialize with ``init_options`` the way an editor would, shut down."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
    env["OPENAI_API_KEY"] = TEST_API_KEY
    proc = subprocess.Popen(
        server_cmd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path
    )
    try:
        _send(
            proc,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "processId": os.getpid(),
                    "rootUri": tmp_path.as_uri(),
                    "capabilities": {},
                    "initializationOptions": init_options,
                },
            },
        )
        while True:
            msg = _receive(proc)
            if msg.get("id") == 1 and "method" not in msg:
                break
        _send(proc, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        while True:
            reply = _receive(proc)
            if reply.get("id") == 2 and "method" not in reply:
                break
        _send(proc, {"jsonrpc": "2.0", "method": "exit"})
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
    assert "error" not in msg, f"initialize failed: {msg['error']}\n{stderr}"
    return msg["result"]


def advertised_commands(result: dict[str, Any]) -> list[str]:
    return list((result["capabilities"].get("executeCommandProvider") or {}).get("commands") or [])


# ---------------------------------------------------------------------------------- Emacs


def emacs_binary() -> str:
    exe = shutil.which("emacs")
    assert exe, f"emacs is not installed: {INSTALL_HINT}"
    probe = subprocess.run(
        [exe, "--batch", "-q", "--eval", "(progn (require 'eglot) (kill-emacs 0))"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, f"emacs has no eglot ({probe.stderr[-2000:]}): {INSTALL_HINT}"
    return exe


@pytest.mark.slow
def test_emacs_eglot_code_action_and_spark_ls_edit(tmp_path: Path, model_endpoint: ModelEndpoint) -> None:
    emacs = emacs_binary()
    ws = workspace(tmp_path)
    src = ws / "helpers.py"
    src.write_text(BUGGY)
    model_endpoint.reply_for = reply_by_task(
        {INSTRUCTION: udiff(FIXED, EDITED, "helpers.py"), "`add`": udiff(BUGGY, FIXED, "helpers.py")}
    )
    result_file = tmp_path / "result.json"
    plan = {
        "result": str(result_file),
        "command": server_cmd(),
        "init_options": {"base_url": model_endpoint.base_url, "model": "gpt-5-mini", "prefetch": False},
        "file": str(src),
        "line": 6,  # return a - b
        "column": 8,
        "title": "Fix bug in add",
        "edit_line": 10,  # inside greet()
        "instruction": INSTRUCTION,
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_", "EMACS"))}
    env.update(SPARK_E2E_CONFIG=str(tmp_path / "plan.json"), OPENAI_API_KEY=TEST_API_KEY, HOME=str(home))
    proc = subprocess.run(
        [emacs, "--batch", "-q", "-L", str(EDITORS / "emacs"), "-l", str(EDITORS / "emacs" / "test" / "e2e.el")],
        cwd=ws,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    buffers = result.pop("buffers", {})
    report = (
        f"emacs exit {proc.returncode}\n--- stderr\n{proc.stderr[-6000:]}\n--- driver result\n"
        f"{json.dumps(result, indent=2)}\n"
        + "".join(f"--- buffer {name}\n{text[-8000:]}\n" for name, text in buffers.items())
    )
    assert proc.returncode == 0 and result.get("ok") is True, report
    assert "Fix bug in add" in result["offered"], report
    # eglot 1.9 has no codeAction/resolve: the edit came as a command + workspace/applyEdit.
    events = "".join(text for name, text in buffers.items() if name.endswith("events*"))
    assert "workspace/executeCommand" in events and "workspace/applyEdit" in events, report
    assert result["after_action"] == FIXED, report
    assert result["prompts"], report
    assert src.read_text() == EDITED, report
    # The contact eglot used came from spark-ls.el (spark-ls-command + initialization options).
    assert '"spark_ls" "--log-level" "INFO" "serve"' in result["contact"], report
    assert ':model "gpt-5-mini"' in result["contact"], report
    texts = [input_text(b.get("input")) + str(b.get("instructions") or "") for b in model_endpoint.requests]
    assert any("`add`" in t and "def add(a, b)" in t for t in texts), report
    assert any(INSTRUCTION in t for t in texts), report
    assert {b.get("model") for b in model_endpoint.requests} == {"gpt-5-mini"}, report


# ---------------------------------------------------------------------------------- Helix


def test_helix_languages_toml(tmp_path: Path) -> None:
    conf = tomllib.loads((EDITORS / "helix" / "languages.toml").read_text())
    server = conf["language-server"]["spark-ls"]
    assert server["command"] == "spark-ls" and server["args"] == ["serve"]
    check_init_options(server["config"])
    languages = {lang["name"]: lang for lang in conf["language"]}
    assert {"python", "javascript", "typescript", "go", "rust", "java", "c", "cpp"} <= set(languages)
    for name, lang in languages.items():
        assert "spark-ls" in lang["language-servers"], name
    result = initialize_result(server["config"], tmp_path)
    assert result["capabilities"].get("codeActionProvider"), result


# ---------------------------------------------------------------------------------- Zed


def test_zed_extension_and_settings(tmp_path: Path) -> None:
    zed = EDITORS / "zed"
    manifest = tomllib.loads((zed / "extension.toml").read_text())
    assert manifest["schema_version"] == 1 and manifest["id"] == "spark-ls"
    server = manifest["language_servers"]["spark-ls"]
    assert "Python" in server["languages"]
    cargo = tomllib.loads((zed / "Cargo.toml").read_text())
    assert cargo["lib"]["crate-type"] == ["cdylib"] and "zed_extension_api" in cargo["dependencies"]
    lib = (zed / "src" / "lib.rs").read_text()
    # The settings key the extension reads, the server id in the manifest and the settings file agree.
    assert re.search(r'const SERVER: &str = "spark-ls";', lib)
    assert '"serve"' in lib and "register_extension!" in lib
    settings = json.loads((zed / "settings.json").read_text())
    options = settings["lsp"]["spark-ls"]["initialization_options"]
    check_init_options(options)
    for lang, conf in settings["languages"].items():
        assert conf["language_servers"][0] == "spark-ls" and "..." in conf["language_servers"], lang
        assert lang in server["languages"], lang
    result = initialize_result(options, tmp_path)
    assert result["capabilities"].get("codeActionProvider"), result


# ---------------------------------------------------------------------------------- Sublime


def test_sublime_client_settings(tmp_path: Path) -> None:
    conf = json.loads((EDITORS / "sublime" / "LSP.sublime-settings").read_text())
    client = conf["clients"]["spark-ls"]
    assert client["enabled"] is True and client["command"] == ["spark-ls", "serve"]
    assert "source.python" in client["selector"].split(" | ")
    check_init_options(client["initializationOptions"])
    result = initialize_result(client["initializationOptions"], tmp_path)
    assert "spark.editWithInstruction" in advertised_commands(result), result


def _load_sublime_plugin() -> types.ModuleType:
    """spark_ls_edit.py with a stand-in for Sublime's sublime_plugin module."""
    stub = types.ModuleType("sublime_plugin")

    class TextCommand:
        def __init__(self, view: Any) -> None:
            self.view = view

    class TextInputHandler:
        pass

    stub.TextCommand = TextCommand  # type: ignore[attr-defined]
    stub.TextInputHandler = TextInputHandler  # type: ignore[attr-defined]
    saved = sys.modules.get("sublime_plugin")
    sys.modules["sublime_plugin"] = stub
    try:
        spec = importlib.util.spec_from_file_location("spark_ls_edit", EDITORS / "sublime" / "spark_ls_edit.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop("sublime_plugin", None)
        else:
            sys.modules["sublime_plugin"] = saved
    return module


def test_sublime_edit_command_sends_spark_edit(tmp_path: Path) -> None:
    plugin = _load_sublime_plugin()
    conf = json.loads((EDITORS / "sublime" / "LSP.sublime-settings").read_text())
    commands = json.loads((EDITORS / "sublime" / "spark-ls.sublime-commands").read_text())

    calls: list[tuple[str, dict[str, Any]]] = []

    class View:
        def run_command(self, name: str, args: dict[str, Any]) -> None:
            calls.append((name, args))

    cls = plugin.SparkLsEditCommand
    # Sublime derives the command name from the class name: SparkLsEditCommand -> spark_ls_edit.
    derived = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__.removesuffix("Command")).lower()
    assert {c["command"] for c in commands} == {derived}

    command = cls(View())
    handler = command.input({})
    assert handler is not None and handler.name() == "instruction"
    assert handler.validate("x") and not handler.validate("   ")
    assert command.input({"instruction": "x"}) is None

    command.run(None, "Rename $tmp to total")
    assert len(calls) == 1
    name, args = calls[0]
    assert name == "lsp_execute"
    assert args["session_name"] in conf["clients"]
    assert args["command_name"] == "spark.editWithInstruction"
    # [uri, range, instruction]; LSP expands the first two, and `$` in the text stays literal.
    assert args["command_args"] == ["${file_uri}", "${range}", "Rename \\$tmp to total"]
    result = initialize_result({}, tmp_path)
    assert args["command_name"] in advertised_commands(result)


# ---------------------------------------------------------------------------------- Neovim (static)


def test_nvim_plugin_setting_names_are_spark_settings() -> None:
    lua = (EDITORS / "nvim" / "lua" / "spark_ls" / "init.lua").read_text()
    block = re.search(r"M\.server_settings = \{(.*?)\}", lua, re.DOTALL)
    assert block, "M.server_settings not found"
    names = re.findall(r'"([a-z_]+)"', block.group(1))
    assert {"model", "fallback_models", "pin", "base_url", "context_budget", "prefetch"} <= set(names)
    assert set(names) <= SETTING_NAMES, set(names) - SETTING_NAMES
    assert re.search(r'M\.edit_command = "spark\.editWithInstruction"', lua)
