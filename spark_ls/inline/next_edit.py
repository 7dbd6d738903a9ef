"""Next-edit suggestions (Zeta-style): after an edit, predict the next one nearby.

The model sees the user's recent edits (as small unified diffs), the stable file context, and an
excerpt with an *editable region* around the cursor (a few lines either side, cut at the
excerpt's edges) marked, and the cursor marked inside it. It replies with the editable region
rewritten. The engine (:func:`spark_ls.diffs.apply_reply`, scope mode, the region as the only
allowed range) places the reply, refuses anything that changes text outside the region, and
checks the syntax did not get worse: the prediction either equals the old text or differs only
inside the region.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from spark_ls.context.document import Snapshot
from spark_ls.diffs import Edit, PatchRefused, apply_reply, minimal_edits
from spark_ls.model.types import ModelRequest

LINES_ABOVE = 3
LINES_BELOW = 6
EXCERPT_LINES = 20  # shown around the editable region, read-only
MAX_RECENT_EDITS = 5
REGION_START = "<|editable_region_start|>"
REGION_END = "<|editable_region_end|>"
CURSOR = "<|user_cursor_is_here|>"

INSTRUCTIONS = (
    "You predict the next edit a programmer will make. You are shown their recent edits (oldest "
    "first), then an excerpt of the file they are editing. Part of the excerpt is the editable "
    f"region between {REGION_START} and {REGION_END}; the cursor is at {CURSOR}. Rewrite the "
    "editable region with the edit the programmer is most likely to make next (continue the "
    "change their recent edits started: e.g. rename the remaining uses, update a call after a "
    "signature change, finish a pattern). Reply with ONLY the rewritten editable region in one "
    "fenced code block, without the markers, every line with its full indentation. If no edit "
    "is needed, reply with the region unchanged."
)


@dataclass(frozen=True)
class RecentEdit:
    line: int  # first changed line (0-based) in the newer text
    diff: str  # a small unified diff of the change


class EditHistory:
    """Recent edits per document, derived from successive texts (no editor hooks needed): each
    observation of a changed text records one edit; consecutive keystrokes on the same lines
    merge into one edit, as a person would describe them.

    Cheap on a large file: the changed part is found from a hint (the cursor, or the last edit),
    comparing only the text around it after one check of everything before it."""

    def __init__(self, limit: int = MAX_RECENT_EDITS) -> None:
        self._last: dict[str, str] = {}
        self._base: dict[str, tuple[str, int, int]] = {}  # text before the current edit run; its line span
        self._edits: dict[str, deque[RecentEdit]] = {}
        self._hint: dict[str, int] = {}  # where the last change started (str offset)
        self.limit = limit

    def observe(self, key: str, path: str, text: str, hint: int | None = None,
                line_starts: Sequence[int] | None = None) -> None:
        """Record ``text`` as the document's current text; ``hint``: a str offset near where it
        changed (e.g. the cursor), which makes finding the change cost only a few slices;
        ``line_starts``: ``text``'s line table if the caller has it (no count of the text)."""
        last = self._last.get(key)
        self._last[key] = text
        if last is None or last is text or last == text:
            return
        near = hint if hint is not None else self._hint.get(key)
        span = changed_span(last, text, near)
        self._hint[key] = span[0]

        def line_of(offset: int) -> int:  # the lines before a change's start are unchanged
            if line_starts is not None:
                return bisect.bisect_right(line_starts, offset) - 1
            return text.count("\n", 0, offset)

        first = line_of(span[0])
        new_last = first + max(0, text.count("\n", span[0], span[2]) - 1)
        edits = self._edits.setdefault(key, deque(maxlen=self.limit))
        base = self._base.get(key)
        if base is not None and edits and base[1] - 2 <= first <= base[2] + 2:
            before = base[0]  # the same place: merge with the previous edit
            edits.pop()
            lines = (min(base[1], first), max(base[2], new_last))
            # The run started at most a few lines above this change: hint there.
            span = changed_span(before, text, _lines_up(text, span[0], first - lines[0]))
        else:
            before = last
            lines = (first, new_last)
        self._base[key] = (before, lines[0], lines[1])
        edits.append(RecentEdit(lines[0], small_diff(before, text, path, span, line_of(span[0]))))

    def edits(self, key: str) -> list[RecentEdit]:
        return list(self._edits.get(key, ()))

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
        self._base.pop(key, None)
        self._edits.pop(key, None)
        self._hint.pop(key, None)


def _lines_up(text: str, line_start: int, count: int) -> int | None:
    """The start of the line ``count`` lines above the one starting at ``line_start`` (None when
    that is far: no hint is better than a long scan)."""
    if count > 64:
        return None
    at = line_start
    for _ in range(count):
        if at == 0:
            break
        at = text.rfind("\n", 0, at - 1) + 1
    return at


def _common_prefix(a: str, b: str, lo: int = 0, hi: int | None = None) -> int:
    """Length of the common prefix of ``a`` and ``b``, given that it is at least ``lo`` (and at
    most ``hi``): galloping then binary search over slices starting at ``lo`` (C-speed
    comparisons of short slices, never a copy of the whole text per step)."""
    top = min(len(a), len(b)) if hi is None else min(hi, len(a), len(b))
    step = 64
    while lo + step < top and a[lo : lo + step] == b[lo : lo + step]:
        lo += step
        step *= 2
    high = min(top, lo + step)
    while lo < high:
        middle = (lo + high + 1) // 2
        if a[lo:middle] == b[lo:middle]:
            lo = middle
        else:
            high = middle - 1
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common suffix (at most ``limit``), galloping from the end."""
    la, lb = len(a), len(b)
    top = min(la, lb, limit)
    lo, step = 0, 64
    while lo + step < top and a[la - lo - step : la - lo] == b[lb - lo - step : lb - lo]:
        lo += step
        step *= 2
    high = min(top, lo + step)
    while lo < high:
        middle = (lo + high + 1) // 2
        if a[la - middle : la - lo] == b[lb - middle : lb - lo]:
            lo = middle
        else:
            high = middle - 1
    return lo


def changed_span(old: str, new: str, hint: int | None = None) -> tuple[int, int, int]:
    """(start, old end, new end): the changed part, widened to whole lines. ``hint``: an offset
    near the change; correct whatever it is (a wrong hint only costs a full search)."""
    lo = 0
    if hint is not None:
        # Everything before the hint's line (less a margin) unchanged? One comparison says so.
        guess = max(0, min(hint, len(old), len(new)) - 256)
        guess = old.rfind("\n", 0, guess) + 1
        if old[:guess] == new[:guess]:
            lo = guess
    p = _common_prefix(old, new, lo)
    s = _common_suffix(old, new, min(len(old), len(new)) - p)
    start = old.rfind("\n", 0, p) + 1
    old_end = old.find("\n", len(old) - s)
    new_end = new.find("\n", len(new) - s)
    old_end = len(old) if old_end < 0 else old_end + 1
    new_end = len(new) if new_end < 0 else new_end + 1
    return start, max(start, old_end), max(start, new_end)


def changed_lines(old: str, new: str) -> tuple[int, int, int]:
    """First changed line, and the last changed line in the old and the new text."""
    start, old_end, new_end = changed_span(old, new)
    first = old.count("\n", 0, start)
    old_n = old[start:old_end].count("\n")
    new_n = new[start:new_end].count("\n")
    return first, first + max(0, old_n - 1), first + max(0, new_n - 1)


def small_diff(old: str, new: str, path: str, span: tuple[int, int, int] | None = None,
               first_line: int | None = None) -> str:
    """A unified diff of the changed lines only (no context): cheap on a large file. ``span``
    (from :func:`changed_span`) and its 0-based ``first_line``, when the caller knows them."""
    start, old_end, new_end = span if span is not None else changed_span(old, new)
    first = (old.count("\n", 0, start) if first_line is None else first_line) + 1
    removed = old[start:old_end].splitlines(keepends=True)
    added = new[start:new_end].splitlines(keepends=True)
    lines = [f"--- a/{path}\n", f"+++ b/{path}\n", f"@@ -{first},{len(removed)} +{first},{len(added)} @@\n"]
    lines += ["-" + (x if x.endswith("\n") else x + "\n") for x in removed]
    lines += ["+" + (x if x.endswith("\n") else x + "\n") for x in added]
    return "".join(lines)


def editable_region(snap: Snapshot, line: int, *, above: int = LINES_ABOVE, below: int = LINES_BELOW) -> tuple[int, int]:
    last = max(0, snap.line_count - 1)
    line = max(0, min(line, last))
    return max(0, line - above), min(last, line + below)


@dataclass(frozen=True)
class NextEditPrompt:
    request: ModelRequest
    region: tuple[int, int]


def build_request(
    snap: Snapshot, offset: int, *, path: str, recent: list[RecentEdit], header: str = ""
) -> NextEditPrompt:
    text = snap.text
    line = snap.line_of_offset(offset) if text else 0
    region = editable_region(snap, line)
    lines = snap.lines
    shown_from = max(0, region[0] - EXCERPT_LINES)
    shown_to = min(len(lines), region[1] + 1 + EXCERPT_LINES)
    region_start = snap.offset_of_line(region[0]) if lines else 0
    region_end = snap.offset_of_line(region[1] + 1) if region[1] + 1 < len(lines) else len(text)
    inner = text[region_start:offset] + CURSOR + text[offset:region_end]
    if inner and not inner.endswith("\n"):
        inner += "\n"
    excerpt = (
        "".join(lines[shown_from : region[0]]) + REGION_START + "\n" + inner + REGION_END + "\n" + "".join(lines[region[1] + 1 : shown_to])
    )
    language = snap.language.name if snap.language else ""
    history = "\n".join(e.diff for e in recent) or "(none)"
    user = f"Recent edits:\n{history}\n\nFile {path} (excerpt):\n```{language}\n{excerpt}```"
    context = f"Context from {path}:\n```{language}\n{header}```" if header else ""
    return NextEditPrompt(
        ModelRequest(instructions=INSTRUCTIONS, input=user, context=context, conversation=None, max_output_tokens=512),
        region,
    )


@dataclass(frozen=True)
class NextEdit:
    new_text: str  # the whole document after the edit
    edits: list[Edit]  # minimal, in old-text offsets; all inside the region
    region: tuple[int, int]


def place_reply(snap: Snapshot, region: tuple[int, int], reply: str, *, path: str) -> NextEdit | None:
    """The verified next edit, or None when the model proposes no change. Raises PatchRefused
    when the reply would change text outside the region or break the syntax."""
    old = snap.text
    cleaned = reply.replace(CURSOR, "").replace(REGION_START, "").replace(REGION_END, "")
    if not cleaned.strip():
        return None
    new = apply_reply(
        old, cleaned, path=path, mode="scope", allowed=[region], scope=region,
        language=snap.language, old_tree=snap.tree, scope_is_definition=False,
    )
    if new == old:
        return None
    return NextEdit(new, minimal_edits(old, new), region)


def as_single_edit(edits: list[Edit], old: str) -> Edit | None:
    """The edits as one replacement spanning them all (None when there are none)."""
    if not edits:
        return None
    start = min(e.start for e in edits)
    end = max(e.end for e in edits)
    pieces: list[str] = []
    at = start
    for e in sorted(edits, key=lambda e: e.start):
        pieces.append(old[at : e.start])
        pieces.append(e.new_text)
        at = e.end
    pieces.append(old[at:end])
    return Edit(start, end, "".join(pieces))


__all__ = [
    "EditHistory",
    "NextEdit",
    "NextEditPrompt",
    "PatchRefused",
    "RecentEdit",
    "as_single_edit",
    "build_request",
    "editable_region",
    "place_reply",
]
