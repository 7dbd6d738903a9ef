"""The VS Code extension's next-edit logic (editors/vscode/lib/nextEdit.js: validating a
spark/nextEdit result, what is drawn for it, applying its edits, when it still applies), unit-tested
with plain node (editors/vscode/test/nextEdit.test.js, node's built-in test runner). The rendering,
Tab and Esc in a real VS Code: tests/test_inline_vscode.py."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from vscode_helpers import EXT_DIR


def test_next_edit_logic_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (20+) is required for the VS Code extension's unit tests", pytrace=False)
    run = subprocess.run(  # noqa: PLW1510 - returncode asserted with the output
        [node, "--test", "test/"], cwd=EXT_DIR, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.MULTILINE)
    assert "# fail 0" in run.stdout and passed and int(passed.group(1)) >= 7, run.stdout[-3000:]
