"""Inline completions and next edit in a real Neovim 0.12 (editors/nvim + `spark-ls serve` +
the loopback model endpoint): ghost text appears while typing and <Tab> accepts it
(vim.lsp.inline_completion.get()); :SparkNextEdit shows the predicted edit as virtual text,
<Tab> applies it, <Esc> dismisses it. Run under `flock /tmp/heavy.lock` on a shared machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from inline_helpers import inline_reply
from model_endpoint import ModelEndpoint
from nvim_helpers import run_nvim, server_cmd, workspace

pytestmark = pytest.mark.slow

SOURCE = "def add(a, b):\n    return \n"


def test_ghost_text_appears_and_tab_accepts(tmp_path: Path, model_endpoint: ModelEndpoint) -> None:
    ws = workspace(tmp_path)
    src = ws / "calc.py"
    src.write_text(SOURCE)
    model_endpoint.reply_for = inline_reply
    plan = {
        "setup": {"cmd": server_cmd(), "base_url": model_endpoint.base_url, "model": "gpt-5-mini",
                  "prefetch": False, "diagnostics": False},
        # Cursor at the end of line 2 ("    return "); `a` appends, then "a" is typed.
        "steps": [{"kind": "inline_completion", "file": str(src), "cursor": [2, 10], "type": "a"}],
    }
    result, report = run_nvim(tmp_path, plan)
    assert result.get("ok") is True and result["returncode"] == 0, report
    step = result["steps"][0]
    assert step["provider"] is True and step["enabled"] is True, report
    assert "+ b" in step["ghost"], report  # what was drawn as ghost text
    assert step["text"] == "def add(a, b):\n    return a + b", report
    assert src.read_text() == "def add(a, b):\n    return a + b\n"
    assert step["ghost_after_accept"] == "", report


NES_OLD = "def area(w, h):\n    return w * h\n\n\nprint(area(2, 3))\nprint(area(4, 5))\n"
NES_RENAMED = NES_OLD.replace("def area", "def surface", 1)
NES_NEXT = NES_RENAMED.replace("area(", "surface(")


def test_next_edit_virtual_text_tab_accepts_and_esc_dismisses(tmp_path: Path, model_endpoint: ModelEndpoint) -> None:
    ws = workspace(tmp_path)
    src = ws / "shapes.py"
    src.write_text(NES_RENAMED)

    def reply_for(body: dict) -> str:
        if "predict the next edit" in str(body.get("instructions")):
            return "```python\n" + NES_NEXT + "```"
        return ""

    model_endpoint.reply_for = reply_for
    setup = {"cmd": server_cmd(), "base_url": model_endpoint.base_url, "model": "gpt-5-mini", "prefetch": False,
             "diagnostics": False}
    # First Esc (dismiss: nothing changes), then Tab (apply).
    plan = {
        "setup": setup,
        "steps": [
            {"kind": "next_edit", "file": str(src), "cursor": [2, 4], "accept": False},
            {"kind": "next_edit", "file": str(src), "cursor": [2, 4], "accept": True},
        ],
    }
    result, report = run_nvim(tmp_path, plan)
    assert result.get("ok") is True and result["returncode"] == 0, report
    dismissed, accepted = result["steps"]
    assert "print(surface(2, 3))" in dismissed["virtual_text"], report
    assert dismissed["unchanged"] is True and dismissed["marks_after"] == 0, report
    assert accepted["marks_after"] == 0, report
    assert src.read_text() == NES_NEXT
