"""Inline completion (ghost text) in a real VS Code: code-server 4.100.3 + the spark-ls VSIX
(vscode-languageclient 11 registers textDocument/inlineCompletion by itself) + headless Chromium
driven by the keyboard (editors/vscode/e2e/drive.js, "inline" plan) + the loopback model endpoint.

Needs editors/vscode/e2e/setup.sh (as tests/test_vscode_e2e.py). Run under `flock /tmp/heavy.lock`.
SPARK_LS_UPDATE_SCREENSHOT=1 refreshes docs/images/vscode-inline.png from the run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import TEST_API_KEY
from inline_helpers import inline_reply
from model_endpoint import ModelEndpoint
from vscode_helpers import REPO, _done

SOURCE = "def add(a, b):\n    return \n"
SCREENSHOT = REPO / "docs" / "images" / "vscode-inline.png"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.xfail(
    reason="known gap (issue #13 stays open): in code-server 4.100.3 no inline-completion request reaches "
    "the model, even with the client's proposed features registered; strict, so a fix makes this fail "
    "until the marker is removed",
    strict=True,
)
def test_ghost_text_appears_and_tab_accepts_in_real_vscode(vscode_factory, tmp_path: Path) -> None:
    vs = vscode_factory()
    source = vs.workspace / "calc.py"
    source.write_text(SOURCE)
    shot = tmp_path / "inline.png"
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=inline_reply) as ep:
        vs.start({"OPENAI_BASE_URL": ep.base_url, "OPENAI_API_KEY": TEST_API_KEY})
        # Line 2 is "    return " (11 characters): the cursor after it, then "a" is typed.
        steps = vs.drive({"file": source.name, "inline": {"line": 2, "column": 12, "type": "a"}, "screenshot": str(shot)})
        context = vs.explain(steps, ep, source)
        assert _done(steps), context
        vs.stop()
        inline_calls = [c for c in ep.calls if "<CURSOR>" in str(c.body.get("input"))]
        assert inline_calls, context
    ghost = next(s for s in steps if s["step"] == "ghost")["text"]
    assert "+ b" in ghost, context  # the ghost text VS Code drew
    assert source.read_text() == "def add(a, b):\n    return a + b\n", context
    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("SPARK_LS_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
