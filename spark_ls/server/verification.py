"""`verify_command` in the editor: test a quick fix before it is offered.

With ``verify_command`` set (editor settings or the environment; never a repository's own config
file), a quick fix ("Fix bug", "Fix: <diagnostic>") or a behaviour-preserving refactoring is
tested before its edit is returned: the command runs twice, in parallel, on private copies of the
document's repository (git's file list; the document's directory outside git) holding the
editor's current text, once unchanged and once with the fix. A fix that makes the result worse
(a refactoring: that changes it) is refused with the command's before/after; a fix that turns a
failing command green is *verified*: the resolved action is marked preferred and says so.
Cancelling the request (or its $/progress) kills the command.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spark_ls.check.files import git_toplevel
from spark_ls.check.verify import Verifier, compare, describe_outcome, verdict

VERIFIED_SUFFIX = " (verified by tests)"

# WorkspaceEdit -> outcome, for the resolve handler (lsprotocol's classes are unhashable).
_outcomes: dict[int, tuple[weakref.ref[Any], str]] = {}


class VerificationRefused(Exception):
    """The fix makes the verify command's result worse; the message says how."""


def applies(action: Any) -> bool:
    return str(action.kind).startswith("quickfix") or bool(getattr(action, "preserves_behaviour", False))


async def verify_fix(
    settings: Any, action: Any, path: str, old_text: str, new_text: str,
    *, on_status: Callable[[str], None] | None = None,
) -> str | None:
    """Run ``settings.verify_command`` on the fix; the outcome (see check.verify.compare) or None
    when there is nothing to run. Raises VerificationRefused."""
    command = getattr(settings, "verify_command", None)
    if not command or old_text == new_text or not applies(action):
        return None
    file = Path(path).resolve()
    root = git_toplevel(file.parent) or file.parent
    try:
        rel_path = file.relative_to(root).as_posix()
    except ValueError:
        return None
    if on_status is not None:
        on_status(f"running `{command}`")
    verifier = Verifier(root, command, timeout=float(getattr(settings, "verify_timeout", 300.0)), jobs=2)
    try:
        baseline, candidate = await asyncio.gather(
            verifier.run({rel_path: old_text.encode("utf-8")}),
            verifier.run({rel_path: new_text.encode("utf-8")}),
        )
    finally:
        await asyncio.to_thread(verifier.close)
    outcome = compare(baseline, candidate)
    detail = describe_outcome(command, baseline, candidate)
    preserving = bool(getattr(action, "preserves_behaviour", False))
    if not verdict(outcome, preserves_behaviour=preserving):
        reason = "breaks tests" if outcome == "worse" else "changes test results"
        raise VerificationRefused(f"refused: {reason}: {detail}")
    return outcome


def remember(edit: Any, outcome: str | None) -> None:
    if outcome is None:
        return
    key = id(edit)
    _outcomes[key] = (weakref.ref(edit, lambda _ref: _outcomes.pop(key, None)), outcome)


def outcome_of(edit: Any) -> str | None:
    entry = _outcomes.get(id(edit))
    if entry is None or entry[0]() is not edit:
        return None
    return entry[1]
