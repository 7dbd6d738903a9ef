"""End to end in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) + the spark-ls VSIX + headless
Chromium driven by the keyboard through Playwright (editors/vscode/e2e/drive.js).

The chain under test is the one a user has: VS Code -> extension (vscode-languageclient) -> the
spark-ls server *bundled in the VSIX* (bundled/tool/server.py + bundled/libs*, run by the first
Python 3.11+ on PATH, as with no Python extension installed) -> the fake model endpoint
(tests/model_endpoint.py, real Responses-API WebSocket protocol) -> a verified diff -> a versioned
workspace edit -> Ctrl+S -> disk.

Needs `editors/vscode/e2e/setup.sh` to have run (Debian chromium, code-server in the cache, npm
packages, the bundled server, the VSIX); fails with that instruction otherwise. Nothing is
downloaded here.
Set SPARK_LS_UPDATE_SCREENSHOT=1 to refresh docs/images/vscode-quickfix.png from the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint
from vscode_helpers import (
    BUG_COLUMN,
    BUG_LINE,
    BUGGY,
    EXT_DIR,
    FIX_REPLY,
    FIXED,
    INSTRUCTED,
    INSTRUCTION,
    INSTRUCTION_LINES,
    INSTRUCTION_REPLY,
    SCREENSHOT,
    _done,
)

from spark_ls.config import DEFAULT_MODEL


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_fix_and_instruction_in_real_vscode(
    vscode_factory, tmp_path: Path
) -> None:
    vs = vscode_factory()
    source = vs.workspace / "shapes.py"
    source.write_text(BUGGY)
    shot = tmp_path / "quickfix.png"

    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.replies.append(FIX_REPLY)
        ep.replies.append(INSTRUCTION_REPLY)
        # A model that takes a moment, so the status bar's "working" state is on screen long enough to see.
        ep.first_token_delay = 1.0
        vs.start({"OPENAI_BASE_URL": ep.base_url, "OPENAI_API_KEY": TEST_API_KEY})
        steps = vs.drive(
            {
                "file": source.name,
                "cursor": {"line": BUG_LINE, "column": BUG_COLUMN},
                "fixTitle": "Fix:",
                "screenshot": str(shot),
                "instruction": {
                    "fromLine": INSTRUCTION_LINES[0],
                    "toLine": INSTRUCTION_LINES[1],
                    "text": INSTRUCTION,
                },
                "showPrompt": True,
            }
        )
        context = vs.explain(steps, ep, source)
        assert _done(steps), context
        vs.stop()

        # The lightbulb menu listed spark-ls's fix for the diagnostic, and the saved file is exactly
        # the buggy file with both edits: the quick fix, then the instruction.
        menu = next(s for s in steps if s["step"] == "menu")["rows"]
        chosen = next(s for s in steps if s["step"] == "chosen")["title"]
        assert chosen.startswith("Fix:") and chosen in menu, (chosen, menu)
        assert source.read_text() == INSTRUCTED, context

        # The model saw exactly two output requests: the fix (with the broken line in its input)
        # and the instruction (with the user's words in it), over the WebSocket, authenticated.
        assert len(ep.calls) == 2, context
        fix_call, instruction_call = ep.calls
        assert fix_call.transport == "ws" and instruction_call.transport == "ws"
        assert all(c.outcome == "completed" for c in ep.calls), [
            c.outcome for c in ep.calls
        ]
        fix_input = fix_call.context_text
        assert 'if kind == "circle"\n' in fix_input, fix_input
        assert INSTRUCTION not in fix_input
        assert INSTRUCTION in instruction_call.context_text, (
            instruction_call.context_text
        )
        assert "return math.pi * radius ** 2" in instruction_call.context_text
        assert ep.headers_seen and all(
            h.get("authorization") == f"Bearer {TEST_API_KEY}" for h in ep.headers_seen
        )

    # The status bar shows the server's `spark/status` (model name) and the extension passed the
    # explicitly-set setting through as a snake_case initializationOption.
    status = steps[-1].get("status") or ""
    assert "spark-ls" in status and DEFAULT_MODEL in status, status
    channel = vs.channel_log()
    assert 'options: {"prefetch":false,"inline_completion":false})' in channel, channel[:3000]
    # (That the server applied it shows in the call count above: with prefetch on, VS Code's
    # automatic lightbulb requests would have started more model calls.)

    # The server that ran is the one bundled in the VSIX (its start-up line names its files),
    # started with the Python found on PATH (no Python extension in this VS Code).
    ext_dir = next(
        p
        for p in vs.dirs["extensions"].iterdir()
        if p.name.startswith("spark-ls.spark-ls-")
    )
    assert "[bundled spark-ls, Python 3." in channel and "from PATH]" in channel, (
        channel[:3000]
    )
    assert f"(bundled: {ext_dir}/bundled/libs/spark_ls)" in channel, channel[:3000]
    # While the fix ran, the status bar named it ("working" from the server's spark/status).
    seen = next(s for s in steps if s["step"] == "applied")["statusSeen"]
    assert any("spark-ls: Fix: " in t for t in seen), seen
    # "Spark: Show Prompt of the Last Action" opened the last action's prompt (the instruction's)
    # as a document. (Its full content and the redaction are checked over LSP in
    # test_status_names_the_running_action_and_last_prompt_is_redacted: Monaco renders only the
    # lines on screen.)
    # (Monaco draws spaces as no-break spaces.)
    shown = next(s for s in steps if s["step"] == "prompt")["text"].replace(
        "\u00a0", " "
    )
    assert f"# spark-ls: last prompt (instruction, model {DEFAULT_MODEL})" in shown, (
        shown
    )
    assert "key-shaped redacted" in shown and "## Input" in shown, shown
    assert TEST_API_KEY not in shown

    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("SPARK_LS_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    # The API key reached the server only through the environment: it is in no log, setting or state file.
    vs.assert_no_key_leak(TEST_API_KEY)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_api_key_set_from_the_command_palette_reaches_the_server(
    vscode_factory,
) -> None:
    """No OPENAI_API_KEY anywhere: "Spark: Set API key" stores it in SecretStorage, the client
    restarts the server with it in the child environment, and the endpoint sees it."""
    vs = vscode_factory()
    source = vs.workspace / "shapes.py"
    source.write_text(BUGGY)
    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.replies.append(FIX_REPLY)
        vs.start({"OPENAI_BASE_URL": ep.base_url})
        steps = vs.drive(
            {
                "apiKey": TEST_API_KEY,
                "file": source.name,
                "cursor": {"line": BUG_LINE, "column": BUG_COLUMN},
                "fixTitle": "Fix:",
            }
        )
        context = vs.explain(steps, ep, source)
        assert _done(steps), context
        vs.stop()
        assert source.read_text() == FIXED, context
        assert len(ep.calls) == 1 and ep.calls[0].outcome == "completed", context
        # Every request that reached the model carried the key typed into the input box.
        authorized = [
            h
            for h in ep.headers_seen
            if h.get("authorization") == f"Bearer {TEST_API_KEY}"
        ]
        assert authorized, ep.headers_seen
    channel = vs.channel_log()
    assert "restarting spark-ls: API key changed" in channel, channel[:3000]
    assert "API key: from Spark: Set API key" in channel, channel[:3000]
    vs.assert_no_key_leak(TEST_API_KEY)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_missing_server_names_the_install_command(vscode_factory) -> None:
    vs = vscode_factory(settings={"spark.serverPath": "spark-ls-not-installed"})
    (vs.workspace / "shapes.py").write_text(BUGGY)
    vs.start({})
    steps = vs.drive({"file": "shapes.py", "expectError": "spark-ls is not installed"})
    assert _done(steps), vs.explain(steps)
    message = steps[-1]["error"]
    assert (
        "`spark-ls-not-installed` (setting spark.serverPath) was not found on PATH"
        in message
    ), message
    assert "pipx install '.[local]'" in message and "Python 3.11+" in message, message


# ----- the extension's settings -> server contract, without an editor (node + lib/server.js) -------


def _node(script: str, env: dict[str, str] | None = None) -> object:
    out = subprocess.run(  # noqa: PLW1510 - returncode asserted below
        [shutil.which("node") or "node", "-e", script],
        cwd=EXT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_settings_become_initialization_options_the_server_accepts() -> None:
    explicit = {
        "model": "gpt-5.3-codex",
        "baseUrl": " http://127.0.0.1:9/v1 ",
        "fallbackModels": ["gpt-5-mini", "gpt-4.1"],
        "pin": True,
        "contextBudget": 3500,
        "prefetch": False,
    }
    options = _node(
        "const s = require('./lib/server');"
        f"const explicit = {json.dumps(explicit)};"
        "process.stdout.write(JSON.stringify(s.initializationOptions((k) => ({value: explicit[k], explicit: k in explicit}))));"
    )
    assert options == {
        "model": "gpt-5.3-codex",
        "base_url": "http://127.0.0.1:9/v1",
        "fallback_models": ["gpt-5-mini", "gpt-4.1"],
        "pin": True,
        "context_budget": 3500,
        "prefetch": False,
    }
    # Every key is a Settings field and every value lands as the server's own type.
    from spark_ls.config import Settings

    settings = Settings().merged(options)
    assert (
        settings.model == "gpt-5.3-codex"
        and settings.base_url == "http://127.0.0.1:9/v1"
    )
    assert settings.fallback_models == ("gpt-5-mini", "gpt-4.1")
    assert (
        settings.pin is True
        and settings.context_budget == 3500
        and settings.prefetch is False
    )

    # Settings left at their defaults (or emptied) are not sent, so pyproject/env still apply.
    untouched = _node(
        "const s = require('./lib/server');"
        "const v = {model: '', baseUrl: '  ', fallbackModels: [], pin: false, contextBudget: 2000, prefetch: true};"
        "process.stdout.write(JSON.stringify(s.initializationOptions((k) => ({value: v[k], explicit: k === 'model' || k === 'fallbackModels' || k === 'baseUrl'}))));"
    )
    assert untouched == {}


def _resolve(cfg: dict, env: dict[str, str] | None = None) -> dict:
    """lib/server.js resolveServer (async: interpreters are probed without blocking)."""
    return _node(
        "const s = require('./lib/server');"
        f"s.resolveServer(Object.assign({{extensionPath: {json.dumps(str(EXT_DIR))}}}, {json.dumps(cfg)}), process.env)"
        ".then((r) => process.stdout.write(JSON.stringify(r)));",
        env,
    )


def _python(version: str) -> Path | None:
    """A CPython of this version on this machine (pyenv's or on PATH), if there is one."""
    pyenv = Path.home() / ".pyenv" / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*")) if pyenv.exists() else []:
        exe = candidate / "bin" / f"python{version}"
        if exe.exists():
            return exe
    found = shutil.which(f"python{version}")
    return Path(found) if found and "/shims/" not in found else None


def test_server_command_resolution_and_install_hint(tmp_path: Path) -> None:
    manifest = json.loads((EXT_DIR / "bundled" / "manifest.json").read_text())
    assert (
        manifest["pythons"] == ["3.11", "3.12", "3.13"]
        and manifest["vsceTarget"] == "linux-x64"
    )
    script = str(EXT_DIR / "bundled" / "tool" / "server.py")
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    only_python = dict(os.environ, PATH=str(bin_dir))

    # No setting, no Python extension: the bundled server, run by python3 from PATH.
    found = _resolve({}, only_python)
    assert found == {
        "command": str(bin_dir / "python3"),
        "args": [script, "serve"],
        "env": {"SPARK_LS_IMPORT_STRATEGY": "useBundled"},
        "source": f"bundled spark-ls, Python {here} from PATH",
    }, found
    # The Python extension's interpreter comes first; spark.importStrategy is passed through.
    chosen = _resolve(
        {
            "pythonFromExtension": {"path": sys.executable},
            "importStrategy": "fromEnvironment",
        },
        only_python,
    )
    assert chosen["command"] == sys.executable and chosen["args"] == [
        script,
        "serve",
    ], chosen
    assert chosen["env"] == {"SPARK_LS_IMPORT_STRATEGY": "fromEnvironment"}
    assert (
        chosen["source"] == f"bundled spark-ls, Python {here} from the Python extension"
    )
    # spark.pythonPath wins over both.
    configured = _resolve(
        {"pythonPath": sys.executable, "pythonFromExtension": {"path": "/nonexistent"}}
    )
    assert (
        configured["command"] == sys.executable
        and "spark.pythonPath" in configured["source"]
    )

    # A Python too old for spark-ls is named (3.10 if this machine has one: else a stand-in).
    old = _python("3.10")
    if old is None:
        old = tmp_path / "python3.10"
        old.write_text('#!/bin/sh\necho "3.10"\n')
        old.chmod(0o755)
    too_old = _resolve({"pythonPath": str(old)})
    assert (
        too_old["error"].startswith("spark-ls needs Python 3.11+;")
        and "is Python 3.10" in too_old["error"]
    )

    # Nothing usable on PATH: the error says what to install or set.
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = _resolve({}, dict(os.environ, PATH=str(empty)))
    assert missing["error"].startswith(
        "spark-ls could not start: no usable Python 3.11+"
    ), missing
    assert (
        "pipx install '.[local]'" in missing["error"]
        and "spark.pythonPath" in missing["error"]
    )

    # spark.serverPath: the user's own executable, as given.
    fake = empty / "my-spark-ls"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    own = _resolve({"serverPath": "my-spark-ls"}, dict(os.environ, PATH=str(empty)))
    assert own == {
        "command": str(fake),
        "args": ["serve"],
        "env": {},
        "source": "spark.serverPath",
    }
    absent = _resolve(
        {"serverPath": "spark-ls-nope"}, dict(os.environ, PATH=str(empty))
    )
    assert absent["error"].startswith(
        "spark-ls is not installed: `spark-ls-nope` (setting spark.serverPath)"
    )

    # The extension host is never blocked: no synchronous child processes anywhere in the extension.
    for source in [EXT_DIR / "extension.js", *(EXT_DIR / "lib").glob("*.js")]:
        assert not re.search(
            r"\b(spawnSync|execSync|execFileSync)\b", source.read_text()
        ), source


@pytest.mark.parametrize("version", ["3.11", "3.12", "3.13"])
def test_bundled_server_runs_on_each_python_without_site_packages(
    version: str, tmp_path: Path, model_endpoint: ModelEndpoint
) -> None:
    """The VSIX's server with nothing but the bundle: `python -S -I` (no site-packages at all)
    runs a whole `check` (tree-sitter, grammars, the WebSocket client) against the endpoint."""
    python = _python(version)
    if python is None:
        pytest.skip(f"no CPython {version} on this machine (pyenv or PATH)")
    buggy = tmp_path / "buggy.py"
    buggy.write_text("def add(a, b):\n    return a - b\n")
    model_endpoint.replies.append(
        "--- a/buggy.py\n+++ b/buggy.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SPARK_LS_", "PYTHON"))
    }
    env.update(OPENAI_BASE_URL=model_endpoint.base_url, OPENAI_API_KEY=TEST_API_KEY)
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        [
            str(python),
            "-S",
            "-I",
            str(EXT_DIR / "bundled" / "tool" / "server.py"),
            "check",
            "buggy.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr  # 1: a proposal
    assert (
        f"(bundled: {EXT_DIR}/bundled/libs/spark_ls) on Python {version}."
        in done.stderr
    ), done.stderr
    assert "+    return a + b" in done.stdout


def test_spawn_errors_and_keys_are_described_without_the_key() -> None:
    out = _node(
        "const s = require('./lib/server');"
        "const e = Object.assign(new Error('spawn spark-ls ENOENT'), {code: 'ENOENT'});"
        "process.stdout.write(JSON.stringify({"
        " enoent: s.describeStartError(e, 'spark-ls'),"
        " other: s.describeStartError(new Error('401 for Bearer sk-abcdefghijklmnop and OPENAI_API_KEY=sk-zyxwvutsrqponm'), 'spark-ls'),"
        " env: s.serverEnv({PATH: '/bin', OPENAI_API_KEY: 'from-env'}, 'from-secrets'),"
        " envNoKey: s.serverEnv({PATH: '/bin', OPENAI_API_KEY: 'from-env'}, undefined)"
        "}));"
    )
    assert (
        "spark-ls is not installed" in out["enoent"]
        and "pipx install '.[local]'" in out["enoent"]
    )
    assert (
        "sk-abcdefghijklmnop" not in out["other"]
        and "sk-zyxwvutsrqponm" not in out["other"]
    ), out["other"]
    assert out["env"] == {"PATH": "/bin", "OPENAI_API_KEY": "from-secrets"}
    assert out["envNoKey"] == {"PATH": "/bin", "OPENAI_API_KEY": "from-env"}


# ----- the server side of the status bar and "Show prompt" (pytest-lsp, no editor) -----------------


async def test_status_names_the_running_action_and_last_prompt_is_redacted(
    model_endpoint: ModelEndpoint, tmp_path: Path
) -> None:
    from lsp_helpers import lsp_client, open_document, wait_ready
    from lsprotocol import types

    pasted_key = "sk-proj-PASTEDINTOTHECODE0123456789"
    source = f'def add(a, b):\n    key = "{pasted_key}"  # pasted into the code\n    return a - b\n'
    fixed = source.replace("return a - b", "return a + b")
    uri = (tmp_path / "calc.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path) as client:
        await wait_ready(client)
        assert (
            await client.protocol.send_request_async("spark/lastPrompt", None) is None
        )
        open_document(client, uri, source)
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(
                    start=types.Position(line=2, character=6),
                    end=types.Position(line=2, character=6),
                ),
                context=types.CodeActionContext(
                    diagnostics=[], trigger_kind=types.CodeActionTriggerKind.Invoked
                ),
            )
        )
        fix = next(a for a in actions if a.title == "Fix bug in add")
        model_endpoint.replies.append(
            f'--- a/calc.py\n+++ b/calc.py\n@@ -1,3 +1,3 @@\n def add(a, b):\n     key = "{pasted_key}"  # pasted into the code\n-    return a - b\n+    return a + b\n'
        )
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.edit is not None
        states = [(s.state, getattr(s, "action", None)) for s in client.statuses]
        # ready (session warm) -> working "Fix bug in add" -> ready, in that order.
        working = states.index(("working", "Fix bug in add"))
        assert ("ready", None) in states[:working] and ("ready", None) in states[
            working + 1 :
        ], states

        prompt = await client.protocol.send_request_async("spark/lastPrompt", None)
    prompt = {
        k: getattr(prompt, k)
        for k in ("action", "model", "instructions", "context", "input")
    }
    assert prompt["action"] == "fix-bug" and prompt["model"]
    text = prompt["instructions"] + prompt["context"] + prompt["input"]
    assert "def add(a, b):" in text and "return a - b" in text  # the prompt as sent
    assert pasted_key not in text and TEST_API_KEY not in text  # keys redacted
    assert "***" in text
    # What the model really received held the code (the endpoint saw it; the redaction is on the way out).
    assert pasted_key in json.dumps(model_endpoint.requests[-1])
    assert fixed != source
