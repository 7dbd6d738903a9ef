"""README's main job, for real: `spark-ls check examples/buggy.py` on the embedded local model
(no key, no server) prints a patch that git applies and that fixes the bug."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_main_job_on_the_embedded_model_fixes_the_example(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
    env["SPARK_LS_LOCAL_THREADS"] = "2"
    work = tmp_path / "repo"
    (work / "examples").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "buggy.py", work / "examples" / "buggy.py")
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "spark_ls", "check", "examples/buggy.py"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 1, done.stderr  # 1: proposals made
    assert "embedded local model" in done.stderr
    patch = done.stdout
    assert patch.startswith("--- a/examples/buggy.py\n+++ b/examples/buggy.py\n"), patch
    subprocess.run(["git", "apply", "--check", "-"], cwd=work, input=patch, text=True, check=True)
    subprocess.run(["git", "apply", "-"], cwd=work, input=patch, text=True, check=True)
    namespace = runpy.run_path(str(work / "examples" / "buggy.py"))  # the patched module, imported
    assert namespace["average"]([1, 2, 3, 4]) == 2.5
    assert namespace["average"]([5]) == 5
