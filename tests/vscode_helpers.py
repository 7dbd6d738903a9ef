"""Shared by the VS Code end-to-end tests: the code-server + Chromium harness (VsCode, the
`vscode_factory` fixture) and the sample files. See tests/test_vscode_e2e.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from model_endpoint import ModelEndpoint

REPO = Path(__file__).resolve().parents[1]
EXT_DIR = REPO / "editors" / "vscode"
E2E_DIR = EXT_DIR / "e2e"
SETUP = E2E_DIR / "setup.sh"
VSIX = EXT_DIR / "spark-ls.vsix"
CACHE = Path(
    os.environ.get("SPARK_LS_E2E_CACHE") or Path.home() / ".cache" / "spark-ls-e2e"
)
CODE_SERVER = CACHE / "code-server" / "node_modules" / ".bin" / "code-server"
PLAYWRIGHT = E2E_DIR / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "docs" / "images" / "vscode-quickfix.png"
PACKAGED = [
    "extension.js",
    "package.json",
    "package-lock.json",
    "README.md",
    "LICENSE",
    ".vscodeignore",
    "bundled/tool/server.py",
]

BUGGY = """\
import math


def area(radius):
    return math.pi * radius ** 2


def describe(shape):
    kind = shape["kind"]
    if kind == "circle"
        return f"circle of area {area(shape['radius']):.2f}"
    return kind
"""
BUG_LINE = 10  # 1-based: the `if` line lacks its colon
BUG_COLUMN = (
    6  # 1-based: on the `if` keyword, inside spark-ls's syntax-error diagnostic
)
FIXED = BUGGY.replace('if kind == "circle"\n', 'if kind == "circle":\n')
FIX_REPLY = """\
--- a/shapes.py
+++ b/shapes.py
@@ -9,4 +9,4 @@
     kind = shape["kind"]
-    if kind == "circle"
+    if kind == "circle":
         return f"circle of area {area(shape['radius']):.2f}"
     return kind
"""
INSTRUCTION = "Round the area to two decimal places"
INSTRUCTION_LINES = (4, 5)  # 1-based, selected: the whole of area()
INSTRUCTED = FIXED.replace(
    "    return math.pi * radius ** 2\n", "    return round(math.pi * radius ** 2, 2)\n"
)
INSTRUCTION_REPLY = """\
--- a/shapes.py
+++ b/shapes.py
@@ -4,2 +4,2 @@
 def area(radius):
-    return math.pi * radius ** 2
+    return round(math.pi * radius ** 2, 2)
"""

QUIET_SETTINGS = {
    "workbench.startupEditor": "none",
    "telemetry.telemetryLevel": "off",
    "extensions.autoUpdate": False,
    "extensions.autoCheckUpdates": False,
    "extensions.ignoreRecommendations": True,
    "update.mode": "none",
    "security.workspace.trust.enabled": False,
    "workbench.tips.enabled": False,
    "git.enabled": False,
    "files.autoSave": "off",
    "editor.formatOnSave": False,
    # Sent to the server as initializationOptions {"prefetch": false}: with prefetch on, VS Code's
    # automatic lightbulb requests would also start model calls, and this test counts them exactly.
    "spark.prefetch": False,
    # Off here: after any edit (a quick fix too) the extension asks spark/nextEdit, one more model
    # call than the code-action tests count. tests/test_inline_vscode.py turns it on.
    "spark.inlineCompletion": False,
    # vscode-languageclient 10+ traces only when the log channel's level is Trace as well.
    "spark.trace.server": "verbose",
}


def _require_setup() -> None:
    problems = []
    if not CODE_SERVER.exists():
        problems.append(f"code-server not found at {CODE_SERVER}")
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} not installed")
    if not PLAYWRIGHT.exists():
        problems.append(f"playwright-core not installed in {E2E_DIR}")
    if not (EXT_DIR / "node_modules" / "vscode-languageclient").exists():
        problems.append(f"npm packages not installed in {EXT_DIR}")
    if not VSIX.exists():
        problems.append(f"{VSIX.name} not built")
    else:
        sources = PACKAGED + [
            str(p.relative_to(EXT_DIR)) for p in (EXT_DIR / "lib").glob("*.js")
        ]
        stale = [
            s
            for s in sources
            if (EXT_DIR / s).exists()
            and (EXT_DIR / s).stat().st_mtime > VSIX.stat().st_mtime
        ]
        # The server inside the VSIX is a copy of spark_ls/: a newer source means an old server.
        stale += [
            str(p.relative_to(REPO))
            for p in (REPO / "spark_ls").rglob("*.py")
            if p.stat().st_mtime > VSIX.stat().st_mtime
        ][:3]
        if stale:
            problems.append(f"{VSIX.name} is older than {', '.join(stale)}")
        with zipfile.ZipFile(VSIX) as vsix:
            names = set(vsix.namelist())
        for bundled in (
            "extension/bundled/tool/server.py",
            "extension/bundled/libs/spark_ls/__init__.py",
        ):
            if bundled not in names:
                problems.append(f"{VSIX.name} has no {bundled} (the bundled server)")
    if problems:
        pytest.fail(
            "the VS Code end-to-end setup has not been run (or is out of date): "
            + "; ".join(problems)
            + f". Run `{SETUP.relative_to(REPO)}` first (it installs chromium, code-server, the npm packages and builds the VSIX).",
            pytrace=False,
        )


def _spark_ls_dir() -> Path:
    """The folder holding the `spark-ls` script of the interpreter running the tests."""
    for candidate in (
        Path(sys.executable).parent / "spark-ls",
        shutil.which("spark-ls"),
    ):
        if candidate and Path(candidate).exists():
            return Path(candidate).parent
    pytest.fail(
        "`spark-ls` is not installed for this interpreter (python -m pip install -e .)",
        pytrace=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"code-server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/healthz", timeout=2
            ) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    pytest.fail(
        f"code-server did not answer /healthz:\n{log.read_text(errors='replace')[-3000:]}"
    )


def _describe_calls(ep: ModelEndpoint) -> str:
    return json.dumps(
        [
            {
                "transport": c.transport,
                "outcome": c.outcome,
                "input_tail": c.context_text[-600:],
            }
            for c in ep.calls
        ],
        indent=1,
    )


def _logs(root: Path) -> str:
    """Extension-host and output-channel logs of the run, for failure messages."""
    parts = []
    for path in (
        sorted((root / "logs").rglob("*.log")) if (root / "logs").exists() else []
    ):
        if "exthost" in str(path) or "spark" in path.name.lower():
            parts.append(
                f"--- {path.relative_to(root)}\n{path.read_text(errors='replace')[-4000:]}"
            )
    return "\n".join(parts)


class VsCode:
    """One code-server with the VSIX installed, every folder private to the test (tmp_path)."""

    def __init__(self, tmp_path: Path, *, settings: dict | None = None) -> None:
        _require_setup()
        self.tmp = tmp_path
        self.server_dir = _spark_ls_dir()
        self.home = tmp_path / "home"
        self.dirs = {
            n: tmp_path / n
            for n in ("xdg-config", "xdg-data", "xdg-cache", "user-data", "extensions")
        }
        for d in [self.home, *self.dirs.values()]:
            d.mkdir()
        (self.dirs["user-data"] / "User").mkdir()
        (self.dirs["user-data"] / "User" / "settings.json").write_text(
            json.dumps({**QUIET_SETTINGS, **(settings or {})}, indent=2)
        )
        self.config = tmp_path / "code-server.yaml"
        self.config.write_text("auth: none\ncert: false\n")
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir()
        # VS Code builds the extension host's environment from a login shell (as on a desktop),
        # which resets PATH from /etc/profile; put this Python (3.11+) on PATH the way a user's
        # ~/.profile does. The extension runs its bundled server with it.
        (self.home / ".profile").write_text(f'export PATH="{self.server_dir}:$PATH"\n')
        self.common = [
            "--config",
            str(self.config),
            "--user-data-dir",
            str(self.dirs["user-data"]),
            "--extensions-dir",
            str(self.dirs["extensions"]),
        ]
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "SPARK_LS_"))
        }
        env.update(
            XDG_CONFIG_HOME=str(self.dirs["xdg-config"]),
            XDG_DATA_HOME=str(self.dirs["xdg-data"]),
            XDG_CACHE_HOME=str(self.dirs["xdg-cache"]),
            HOME=str(self.home),
            PATH=f"{self.server_dir}{os.pathsep}{env.get('PATH', '')}",
        )
        self.env = env
        installed = subprocess.run(  # noqa: PLW1510 - returncode asserted below
            [str(CODE_SERVER), *self.common, "--install-extension", str(VSIX)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert any(
            p.name.startswith("spark-ls.spark-ls-")
            for p in self.dirs["extensions"].iterdir()
        ), installed.stdout
        self.log = tmp_path / "code-server.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self, extra_env: dict[str, str]) -> None:
        self.port = _free_port()
        with self.log.open("wb") as log_fh:
            self.proc = subprocess.Popen(
                [
                    str(CODE_SERVER),
                    *self.common,
                    "--auth",
                    "none",
                    "--bind-addr",
                    f"127.0.0.1:{self.port}",
                    "--disable-telemetry",
                    "--disable-update-check",
                    "--disable-workspace-trust",
                ],
                env={**self.env, **extra_env},
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.tmp,
            )
        _wait_healthy(self.port, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def drive(self, plan: dict) -> list[dict]:
        plan = {
            "url": f"http://127.0.0.1:{self.port}/?folder={self.workspace}",
            "failureScreenshot": str(self.tmp / "failure.png"),
            "timeoutMs": 90000,
            **plan,
        }
        plan_file = self.tmp / "plan.json"
        plan_file.write_text(json.dumps(plan))
        run = subprocess.run(  # noqa: PLW1510 - steps and stderr explain failures
            ["node", str(E2E_DIR / "drive.js"), str(plan_file)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=420,
            cwd=E2E_DIR,
        )
        self.driver_stderr = run.stderr
        return [
            json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")
        ]

    def channel_log(self) -> str:
        """The whole `spark-ls` output channel (the extension's own lines and the LSP trace)."""
        return "".join(
            p.read_text(errors="replace")
            for p in (self.dirs["user-data"] / "logs").rglob("*spark-ls.log")
        )

    def explain(
        self,
        steps: list[dict],
        ep: ModelEndpoint | None = None,
        path: Path | None = None,
    ) -> str:
        return (
            f"steps: {json.dumps(steps, indent=1)}\ndriver stderr: {self.driver_stderr[-2000:]}\n"
            + (f"file on disk:\n{path.read_text()}\n" if path else "")
            + (f"model calls: {_describe_calls(ep)}\n" if ep else "")
            + f"logs:\n{_logs(self.dirs['user-data'])}\ncode-server:\n{self.log.read_text(errors='replace')[-2000:]}"
        )

    def assert_no_key_leak(self, key: str) -> None:
        leaks = []
        for root in (*self.dirs.values(), self.home, self.workspace):
            for path in root.rglob("*"):
                if (
                    path.is_file()
                    and path.stat().st_size < 50_000_000
                    and key.encode() in path.read_bytes()
                ):
                    leaks.append(str(path))
        if key in self.log.read_text(errors="replace"):
            leaks.append(str(self.log))
        assert not leaks, f"API key written to {leaks}"


@pytest.fixture
def vscode_factory(tmp_path: Path):
    started: list[VsCode] = []

    def make(**kwargs) -> VsCode:
        vs = VsCode(tmp_path, **kwargs)
        started.append(vs)
        return vs

    yield make
    for vs in started:
        vs.stop()


def _done(steps: list[dict]) -> bool:
    return bool(steps) and bool(steps[-1].get("done"))


