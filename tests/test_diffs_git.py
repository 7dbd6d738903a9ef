"""Real-world diffs: a git history of small scripted edits to copies of stdlib modules.

Each commit's ``git diff`` is applied with the engine and compared with what ``git apply`` makes
of it; the engine's own ``unified_diff`` must be accepted by ``git apply`` too.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from spark_ls.context.languages import language_for
from spark_ls.diffs import apply_reply, unified_diff

PYTHON = language_for(path="x.py")
STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ["textwrap.py", "shlex.py", "colorsys.py", "fnmatch.py"]
COMMITS = 24



def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "-c", "core.safecrlf=false", *args],
        cwd=repo, input=None if stdin is None else stdin.encode(), capture_output=True, check=True,
    )
    return result.stdout.decode("utf-8")  # bytes: text mode would turn CRLF into LF


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def whole(text: str) -> list[tuple[int, int]]:
    return [(0, len(text.splitlines()))]


# ------------------------------------------------------------------------------ scripted edits

def _ending(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _lines(text: str) -> list[str]:
    return text.split(_ending(text))


def rename_local(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    functions = [i for i, line in enumerate(lines) if re.match(r"\s*def \w+\(", line)]
    for start in rng.sample(functions, len(functions)):
        indent = len(lines[start]) - len(lines[start].lstrip())
        end = start + 1
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        names = sorted({m.group(1) for line in lines[start:end] for m in [re.match(r"\s+(\w+) = ", line)] if m})
        if names:
            name = rng.choice(names)
            for index in range(start + 1, end):
                lines[index] = re.sub(rf"\b{name}\b", name + "_value", lines[index])
            return _ending(text).join(lines)
    return text


def insert_comment(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if line.startswith("    ") and line.strip() and not line.rstrip().endswith(("(", ",", "\\"))]
    index = rng.choice(candidates)
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines.insert(index, f"{indent}# note {rng.randrange(1000)}: checked")
    return _ending(text).join(lines)


def delete_comment(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if line.strip().startswith("#")]
    if not candidates:
        return insert_comment(text, rng)
    del lines[rng.choice(candidates)]
    return _ending(text).join(lines)


def wrap_return(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    candidates = [i for i, line in enumerate(lines) if re.match(r"\s+return \S", line) and not line.rstrip().endswith(("(", ",", "\\"))]
    index = rng.choice(candidates)
    head, _, value = lines[index].partition("return ")
    lines[index] = f"{head}return ({value})"
    return _ending(text).join(lines)


def add_function(text: str, rng: random.Random) -> str:
    number = rng.randrange(1000)
    ending = _ending(text)
    body = ending.join(["", "", f"def helper_{number}(value):", f"    return value * {number}"])
    if text.endswith(ending):
        return text + body.lstrip(ending) + ending if rng.random() < 0.5 else text + body.lstrip(ending)
    return text + ending + body.lstrip(ending)


EDITS = [rename_local, insert_comment, delete_comment, wrap_return, add_function]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, str, str]]:
    """(path, old, new, git diff) per commit."""
    repo = tmp_path_factory.mktemp("repo")
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "src").mkdir()
    for number, module in enumerate(MODULES):
        text = read(STDLIB / module)
        if number == 1:
            text = text.replace("\n", "\r\n")  # one CRLF file
        if number == 2:
            text = text.rstrip("\n")  # one file without a final newline
        write(repo / "src" / module, text)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "import")
    rng = random.Random(4)
    records = []
    for _ in range(COMMITS):
        module = rng.choice(MODULES)
        path = repo / "src" / module
        old = read(path)
        new = old
        for _ in range(rng.randint(1, 3)):
            new = rng.choice(EDITS)(new, rng)
        write(path, new)
        git(repo, "commit", "-q", "-am", f"edit {module}")
        diff = git(repo, "diff", "HEAD~1", "HEAD", "--", f"src/{module}")
        records.append((f"src/{module}", old, new, diff))
    return records


def git_apply(tmp_path: Path, relative: str, old: str, diff: str, *extra: str) -> str:
    shutil.rmtree(tmp_path / "work", ignore_errors=True)
    work = tmp_path / "work"
    (work / relative).parent.mkdir(parents=True)
    write(work / relative, old)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run(["git", "apply", "--whitespace=nowarn", *extra], cwd=work, input=diff.encode(), check=True, capture_output=True)
    return read(work / relative)


def test_history_exercises_crlf_and_missing_final_newline(history: list[tuple[str, str, str, str]]) -> None:
    assert any("\r\n" in old for _, old, _, _ in history)
    assert any("\\ No newline at end of file" in diff for _, _, _, diff in history)
    assert all(diff for _, _, _, diff in history)


def test_engine_matches_git_apply(history: list[tuple[str, str, str, str]], tmp_path: Path) -> None:
    for path, old, new, diff in history:
        by_git = git_apply(tmp_path, path, old, diff)
        by_engine = apply_reply(old, diff, path=path, mode="diff", allowed=whole(old), language=PYTHON)
        assert by_git == new
        assert by_engine == by_git, path


@pytest.mark.parametrize("context", [0, 1, 5])
def test_engine_applies_other_context_sizes(history: list[tuple[str, str, str, str]], tmp_path: Path, context: int) -> None:
    repo_free = [(path, old, new) for path, old, new, _ in history]
    for path, old, new in repo_free:
        work = tmp_path / f"u{context}"
        work.mkdir(exist_ok=True)
        write(work / "old.py", old)
        write(work / "new.py", new)
        completed = subprocess.run(
            ["git", "diff", "--no-index", f"-U{context}", "old.py", "new.py"], cwd=work, capture_output=True,
            check=False,  # exit status 1 means "differences found"
        )
        diff = completed.stdout.decode("utf-8").replace("a/old.py", f"a/{path}").replace("b/new.py", f"b/{path}")
        assert apply_reply(old, diff, path=path, mode="diff", allowed=whole(old)) == new


def test_unified_diff_is_accepted_by_git_apply(history: list[tuple[str, str, str, str]], tmp_path: Path) -> None:
    for path, old, new, _ in history:
        ours = unified_diff(old, new, path)
        assert git_apply(tmp_path, path, old, ours) == new
        assert apply_reply(old, ours, path=path, mode="diff", allowed=whole(old)) == new
