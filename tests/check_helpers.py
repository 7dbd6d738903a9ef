"""Shared pieces for the `spark-ls check` tests: a small multi-language git repository, a scripted
model (answers over the fake endpoint's real wire protocol with the diff a model would write), and
a way to run the real command line in a subprocess."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import TEST_API_KEY
from model_endpoint import input_text

REPO_ROOT = Path(__file__).resolve().parent.parent

CALC_PY = '''\
import math


def add(a, b):
    """Sum of a and b."""
    return a - b


def circle_area(r):
    return math.pi * r * 2


class Box:
    def __init__(self, w, h):
        self.w = w
        self.h = h

    def area(self):
        return self.w + self.h
'''

UTIL_JS = '''\
function greet(name) {
  return "hello " + nam;
}

function double(x) {
  return x * 2;
}
'''

MAIN_GO = '''\
package main

import "fmt"

func Max(a int, b int) int {
\tif a < b {
\t\treturn a
\t}
\treturn b
}

func main() {
\tfmt.Println(Max(1, 2))
}
'''

# path -> [(old snippet, new snippet)]: the fixes the scripted model proposes, each applied when
# its snippet lies inside the lines the request allows the model to change.
FIXES: dict[str, list[tuple[str, str]]] = {
    "calc.py": [("return a - b", "return a + b"), ("math.pi * r * 2", "math.pi * r ** 2"),
                ("self.w + self.h", "self.w * self.h")],
    "web/util.js": [('"hello " + nam;', '"hello " + name;')],
    "main.go": [("if a < b {", "if a > b {")],
}

def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return out.stdout


def make_repo(root: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A committed git repository with Python, JavaScript and Go files plus an ignored file."""
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "calc.py": CALC_PY.encode(),
        "web/util.js": UTIL_JS.encode(),
        "main.go": MAIN_GO.encode(),
        "README.md": b"# fixture\n",
        ".gitignore": b"build/\n",
        "build/generated.py": b"def generated(x):\n    return x - 1\n",
    }
    files.update(extra or {})
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "core.autocrlf", "false")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "fixture")
    return root


_PATH_RE = re.compile(r"--- a/([^`\s]+)")
_REGION_RE = re.compile(r"change only lines (\d+)-(\d+)")
_NAME_RE = re.compile(r"`([A-Za-z_][\w.]*)`")


@dataclass
class ScriptedModel:
    """Answers each request as a model would: a unified diff against the text it was shown.

    It reads the target path and the editable lines from the instructions and the scope name from
    the task, and applies the first of ``fixes[path]`` whose snippet lies inside those lines.
    Line endings are those of the prompt (LF), as a model would write them. Scopes named in
    ``refuse`` get a diff whose context is not in the file (spark-ls must refuse it).
    """

    repo: Path
    fixes: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {k: list(v) for k, v in FIXES.items()})
    refuse: set[str] = field(default_factory=set)
    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, body: dict[str, Any]) -> str:
        instructions = str(body.get("instructions") or "")
        path_match = _PATH_RE.search(instructions)
        region_match = _REGION_RE.search(instructions)
        if path_match is None or region_match is None:
            return ""
        path = path_match.group(1)
        first, last = int(region_match.group(1)) - 1, int(region_match.group(2)) - 1
        task = input_text(body.get("input")).rsplit("Task:", 1)[-1]
        names = _NAME_RE.findall(task)
        self.seen.append((path, names[0] if names else ""))
        if names and names[0] in self.refuse:
            return (f"--- a/{path}\n+++ b/{path}\n@@ -1,2 +1,2 @@\n"
                    " this line is not in the file\n-neither is this one\n+return 42\n")
        text = (self.repo / path).read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        for old, new in self.fixes.get(path, []):
            index = text.find(old)
            if index >= 0 and first <= text.count("\n", 0, index) <= last:
                return _diff(path, text, text[:index] + new + text[index + len(old):])
        return ""


def _diff(path: str, old: str, new: str) -> str:
    lines = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=3
    ):
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(lines)

def run_check(repo: Path, base_url: str | None, *args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m spark_ls check ARGS` in ``repo`` against the fake endpoint."""
    command = [sys.executable, "-m", "spark_ls", "check", *args]
    if base_url is not None:
        command += ["--base-url", base_url]
    environment = {
        **os.environ,
        "OPENAI_API_KEY": TEST_API_KEY,
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    environment.pop("OPENAI_BASE_URL", None)
    environment.update(env or {})
    raw = subprocess.run(command, cwd=repo, env=environment, capture_output=True, timeout=timeout, check=False)
    # Decoded by hand: text=True would turn CRLF into LF and hide line-ending bugs in patches.
    return subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode("utf-8"),
                                       raw.stderr.decode("utf-8", errors="replace"))


def json_report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(result.stdout)
