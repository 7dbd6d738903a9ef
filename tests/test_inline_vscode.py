"""Inline completion (ghost text) and next edit in a real VS Code: code-server 4.100.3 + the spark-ls
VSIX (vscode-languageclient 11 registers textDocument/inlineCompletion by itself; the extension asks
spark/nextEdit and draws it) + headless Chromium driven by the keyboard (editors/vscode/e2e/drive.js,
"inline" and "nextEdit" plans) + the loopback model endpoint.

Needs editors/vscode/e2e/setup.sh (as tests/test_vscode_e2e.py). Run under `flock /tmp/heavy.lock`.
SPARK_LS_UPDATE_SCREENSHOT=1 refreshes docs/images/vscode-inline.png (and vscode-next-edit.png) from the run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint, input_text
from vscode_helpers import REPO, _done

SOURCE = "def add(a, b):\n    return a\n"


def _inline_reply(body: dict) -> str:
    """The model's continuation at the cursor (the request marks it with <CURSOR>)."""
    return "+ b" if "return a <CURSOR>" in input_text(body.get("input")) else ""
SCREENSHOT = REPO / "docs" / "images" / "vscode-inline.png"
INLINE_ON = {"spark.inlineCompletion": True}  # the harness's default settings turn it off


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ghost_text_appears_and_tab_accepts_in_real_vscode(vscode_factory, tmp_path: Path) -> None:
    vs = vscode_factory(settings=INLINE_ON)
    source = vs.workspace / "calc.py"
    source.write_text(SOURCE)
    shot = tmp_path / "inline.png"
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=_inline_reply) as ep:
        vs.start({"OPENAI_BASE_URL": ep.base_url, "OPENAI_API_KEY": TEST_API_KEY})
        # Line 2 is "    return a" (12 characters): the cursor after it, then a space is typed (a
        # space opens no word-completion list, which would take Tab and hide ghost text that does
        # not extend its selected word).
        steps = vs.drive({"file": source.name, "inline": {"line": 2, "column": 13, "type": " "}, "screenshot": str(shot)})
        context = vs.explain(steps, ep, source)
        assert _done(steps), context
        vs.stop()
        inline_calls = [c for c in ep.calls if "<CURSOR>" in str(c.body.get("input"))]
        assert inline_calls, context
    ghost = next(s for s in steps if s["step"] == "ghost")["text"].replace("\xa0", " ")  # Monaco draws spaces as NBSP
    assert "+ b" in ghost, context  # the ghost text VS Code drew
    assert source.read_text() == "def add(a, b):\n    return a + b\n", context
    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("SPARK_LS_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


NES_OLD = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nprint(area(4, 5))\n"
NES_TYPED = NES_OLD.replace("def area", "def surface", 1)  # what the user has after the edit
NES_NEXT = NES_TYPED.replace("area(", "surface(")  # what the model predicts next


def _nes_reply(body: dict) -> str:
    if "predict the next edit" in str(body.get("instructions")):
        return "```python\n" + NES_NEXT + "```"
    return ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_next_edit_is_drawn_esc_dismisses_and_tab_applies_in_real_vscode(vscode_factory, tmp_path: Path) -> None:
    vs = vscode_factory(settings=INLINE_ON)
    source = vs.workspace / "shapes.py"
    # The user renames area -> surface: the file has "def surfac", the test types the last "e".
    source.write_text(NES_TYPED.replace("def surface", "def surfac", 1))
    shot = tmp_path / "next-edit.png"
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=_nes_reply) as ep:
        vs.start({"OPENAI_BASE_URL": ep.base_url, "OPENAI_API_KEY": TEST_API_KEY})
        plan = {"file": source.name, "screenshot": str(shot),
                "nextEdit": {"line": 1, "column": 11, "type": "e", "expect": "surface(2, 3)", "path": str(source)}}
        steps = vs.drive(plan)
        context = vs.explain(steps, ep, source)
        vs.stop()
        assert _done(steps), context
        nes_calls = [c for c in ep.calls if "predict the next edit" in str(c.body.get("instructions"))]
        assert len(nes_calls) >= 2, context  # one after the pause in typing, one from the command
    shown = next(s for s in steps if s["step"] == "next-edit-shown")["decorations"]
    assert any("surface(2, 3)" in t for t in shown) and any("Tab accepts" in t for t in shown), context
    # Esc: the decorations went, the text stayed what the user typed.
    assert next(s for s in steps if s["step"] == "dismissed")["text"] == NES_TYPED, context
    # Tab: exactly the predicted edit.
    assert next(s for s in steps if s["step"] == "accepted")["text"] == NES_NEXT, context
    assert source.read_text() == NES_NEXT
    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("SPARK_LS_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, REPO / "docs" / "images" / "vscode-next-edit.png")
