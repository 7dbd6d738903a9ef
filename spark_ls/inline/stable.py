"""The stable context of inline completions, kept per document and reused while the user types.

Computing it (:func:`spark_ls.inline.context.stable_sections`: imports, referenced definitions,
other open files) analyses the whole file: a few milliseconds on a 5,000-line file after an
edit, far more on a cold one. It is called *stable* because it changes rarely: while the cursor
stays in the same function (class, or the same stretch of module-level code) the sections
computed for it are reused, whatever was typed since, until they are ``max_age`` seconds old.
Whether to recompute now or later (when the user pauses) is the caller's decision:
:meth:`StableContext.lookup` says whether an entry is fresh, stale or missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from spark_ls.context.document import Snapshot
from spark_ls.inline.context import (
    StableSection,
    enclosing_lines,
    line_of,
    stable_sections,
)

MAX_AGE = 5.0  # seconds
MAX_LINES = 40  # outside any scope: the cursor may move this far and keep the sections


@dataclass(frozen=True)
class Place:
    """Where a cursor is, as far as the stable context cares."""

    line: int
    scope: tuple[int, int] | None  # inclusive lines of the innermost function/class, if any
    budget: int

    def near(self, other: Place, max_lines: int) -> bool:
        if self.budget != other.budget:
            return False
        if self.scope is not None or other.scope is not None:
            # The same scope: its first line is where it was (an edit above it moves it: recompute).
            return self.scope is not None and other.scope is not None and self.scope[0] == other.scope[0]
        return abs(self.line - other.line) <= max_lines


def place_of(snap: Snapshot, offset: int, budget: int) -> Place:
    """The cursor's place: a walk up the tree from the cursor (microseconds)."""
    offset = max(0, min(offset, len(snap.text)))
    return Place(line_of(snap, offset), enclosing_lines(snap, offset), budget)


@dataclass(frozen=True)
class Entry:
    sections: tuple[StableSection, ...]
    place: Place
    at: float  # clock time computed


FRESH, STALE, MISSING = "fresh", "stale", "missing"


class StableContext:
    """Per key (a document): the last computed sections and where they were computed for."""

    def __init__(self, *, max_age: float = MAX_AGE, max_lines: int = MAX_LINES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, Entry] = {}
        self.max_age = max_age
        self.max_lines = max_lines
        self.clock = clock
        self.computed = 0  # how many times sections were computed (for tests and stats)

    def lookup(self, key: str, place: Place) -> tuple[str, tuple[StableSection, ...]]:
        """(FRESH | STALE | MISSING, the sections to use now). STALE: computed for another place
        or too long ago, still the best available; MISSING: nothing computed yet (``()``)."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING, ()
        if entry.place.near(place, self.max_lines) and self.clock() - entry.at < self.max_age:
            return FRESH, entry.sections
        return STALE, entry.sections

    def compute(self, key: str, snap: Snapshot, offset: int, *, path: str, budget: int,
                others: Sequence[tuple[str, Snapshot]] = ()) -> tuple[StableSection, ...]:
        """Compute the sections for ``offset`` now and keep them."""
        sections = stable_sections(snap, offset, path=path, budget_tokens=budget, others=others)
        self._entries[key] = Entry(sections, place_of(snap, offset, budget), self.clock())
        self.computed += 1
        return sections

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
