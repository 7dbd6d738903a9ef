"""Shared by the `--verify` tests (CLI and editor): a small repository with a real pytest suite."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from check_helpers import git, make_repo

MATH_PY = '''\
def add(a, b):
    return a - b


def mul(a, b):
    return a * b


def double(x):
    result = x * 2
    return result
'''

TEST_MATH_PY = '''\
from mathx import add, mul, double


def test_add():
    assert add(2, 3) == 5


def test_mul():
    assert mul(2, 3) == 6


def test_double():
    assert double(4) == 8
'''

PYTEST = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"


def verify_repo(tmp_path: Path, math_py: str = MATH_PY) -> Path:
    return make_repo(tmp_path / "repo", {"mathx.py": math_py.encode(), "test_mathx.py": TEST_MATH_PY.encode()})


def tree_state(repo: Path) -> tuple[dict[str, bytes], str]:
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return files, git(repo, "status", "--porcelain", "--ignored")
