"""The acceptance replay of bench inline (bench/inline_replay.py) on a real git repository made
here: which lines it replays, in which document state, and how it counts, with scripted model
doubles whose answers are known (an oracle, a wrong model, a silent one)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.inline_replay import ReplayLine, judge, replay, replay_lines
from spark_ls.context.languages import language_for
from spark_ls.inline.prompting import FIM_PREFIX, FIM_SUFFIX

PY = language_for(language_id="python")

OLD = '''import os


def size(path):
    return os.path.getsize(path)


def tail():
    return None
'''

NEW = '''import os


def size(path):
    return os.path.getsize(path)


def total(paths):
    """Sum of the sizes."""
    # every file counts
    result = sum(size(p) for p in paths)
    return result + len(paths)


def tail():
    return None
'''


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "files.py").write_text(OLD)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    (repo / "files.py").write_text(NEW)
    git(repo, "commit", "-qam", "two")
    return repo


def test_replayed_lines_are_the_added_code_lines_in_their_typing_state(tmp_path: Path) -> None:
    lines = replay_lines(make_repo(tmp_path), per_file=10)
    assert [rl.line for rl in lines] == [
        "def total(paths):",
        "    result = sum(size(p) for p in paths)",
        "    return result + len(paths)",
    ]  # no blank, comment or docstring line
    second = lines[1]
    # Above: the commit's lines; below: not the rest of the block, but the old text after it.
    assert second.before.endswith('    # every file counts\n') and "def size" in second.before
    assert second.after == "\ndef tail():\n    return None\n"  # difflib: the blank lines joined the block
    assert second.following == ("    return result + len(paths)", "", "")
    assert all(rl.path == "files.py" and len(rl.commit) == 40 for rl in lines)


def test_judge() -> None:
    assert judge("sum(x)", "sum(x)", ()) == "exact"
    assert judge("sum(x)  ", "sum(x)", ()) == "exact"
    assert judge("sum(", "sum(x)", ()) == "prefix"
    assert judge("sum(x)\n    return 1", "sum(x)", ("    return 1",)) == "exact"
    assert judge("sum(x)\n    return 2", "sum(x)", ("    return 1",)) == "first line"
    assert judge("sum(y)\n    return 1", "sum(x)", ("    return 1",)) == "wrong"
    assert judge("max(x)", "sum(x)", ()) == "wrong"
    assert judge("  ", "sum(x)", ()) == "empty"


class Raw:
    def __init__(self, text: str) -> None:
        self.text = text
        self.model = "scripted"


class Scripted:
    """A raw-completion session double (the embedded model's interface) answering ``answer(prefix)``."""

    supports_raw = True

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    async def complete_raw(self, prompt: str, *, max_tokens: int, stop: list[str], on_delta: Any) -> Raw:
        self.prompts.append(prompt)
        prefix = prompt.split(FIM_PREFIX, 1)[1].split(FIM_SUFFIX, 1)[0]
        return Raw(self.answer(prefix))


def oracle(lines: list[ReplayLine]) -> Any:
    def answer(prefix: str) -> str:
        typed = prefix.rsplit("\n", 1)[-1]  # the window before the cursor ends with the typed part
        line = next(rl.line for rl in lines if rl.line.startswith(typed) and (rl.before + typed).endswith(prefix))
        return line[len(typed) :] + "\n"

    return answer


def run(session: Any, lines: list[ReplayLine], **kw: Any) -> Any:
    return asyncio.run(replay(session, lines, language=PY, budget=384, max_requests=kw.pop("max_requests", 50), **kw))


def test_an_oracle_is_accepted_at_the_first_pause_of_every_line(tmp_path: Path) -> None:
    lines = replay_lines(make_repo(tmp_path), per_file=10)
    result = run(Scripted(oracle(lines)), lines)
    assert [r.verdict for r in result.requests] == ["exact"] * 3
    assert [r.typed for r in result.requests] == ["", "", ""]  # asked right after the indentation
    assert result.saved == result.chars == sum(len(rl.line.strip()) for rl in lines)


def test_a_wrong_model_saves_nothing_and_is_asked_at_pauses_only(tmp_path: Path) -> None:
    lines = replay_lines(make_repo(tmp_path), per_file=10)
    session = Scripted(lambda prefix: "zzz_wrong()\n")
    result = run(session, lines, max_per_line=3)
    assert result.saved == 0 and result.lines == 3
    assert {r.verdict for r in result.requests} == {"wrong"}
    # "def total(paths):" pauses at its start, after "def " and after "total(": 3 requests.
    assert [r.typed for r in result.requests[:3]] == ["", "def", "def total("]
    assert len(result.requests) == 9  # three per line, the cap
    assert len(session.prompts) == 9
    # The state asked about is the typing state: the line typed so far, then the old text.
    assert "def total(" in session.prompts[2] and "result = sum" not in session.prompts[2]


def test_a_suggestion_on_screen_is_typed_through_without_a_request(tmp_path: Path) -> None:
    lines = replay_lines(make_repo(tmp_path), per_file=1)  # "def total(paths):"
    # Right up to "def total", then wrong: typing follows it with no request at "def " (a pause),
    # and "(" departs from it: a pause, a new request.
    session = Scripted(lambda prefix: "def totals(paths):\n" if not prefix.rsplit("\n", 1)[-1].strip() else "paths):\n")
    result = run(session, lines)
    assert [(r.typed, r.verdict) for r in result.requests] == [("", "wrong"), ("def total(", "exact")]
    assert result.typed_through == len("def total")
    assert result.saved == len("paths):")


def test_the_request_budget_is_respected(tmp_path: Path) -> None:
    lines = replay_lines(make_repo(tmp_path), per_file=10)
    result = run(Scripted(lambda prefix: ""), lines, max_requests=4)
    assert len(result.requests) == 4 and {r.verdict for r in result.requests} == {"empty"}
