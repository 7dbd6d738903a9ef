"""Suggestions stay valid while the user types into them.

An entry remembers the document around the cursor when the suggestion was made: everything
before the cursor's line (``before``), the line up to the cursor (``typed``) and everything
after the cursor (``after``). A later request whose text is ``before + typed + x + after``, with
``x`` a prefix of the suggestion, is answered with the rest of the suggestion at once: no model
call. Anything else (a deletion, an edit elsewhere, a character that departs from the
suggestion) misses, and the entry is dropped.

An entry may still be *growing*: the handler returns a first line while the model keeps
generating the block, and the cache receives the longer text later (:meth:`SuggestionCache.extend`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from spark_ls.inline.postprocess import Suggestion


@dataclass
class Entry:
    before: str
    typed: str
    after: str
    suggestion: Suggestion
    pending: asyncio.Future[Suggestion | None] | None = None  # the rest of a block still generating
    hits: int = field(default=0)

    @property
    def line_start(self) -> int:
        return len(self.before)


class SuggestionCache:
    """One entry per document key (a URI); a hit is a few string comparisons."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self.hits = 0
        self.misses = 0

    def put(self, key: str, text: str, line_start: int, suggestion: Suggestion,
            pending: asyncio.Future[Suggestion | None] | None = None) -> Entry:
        cursor = suggestion.start
        entry = Entry(text[:line_start], text[line_start:cursor], text[cursor:], suggestion, pending)
        self._entries[key] = entry
        return entry

    def extend(self, key: str, entry: Entry, suggestion: Suggestion) -> None:
        """Replace ``entry``'s suggestion by a longer one made at the same cursor."""
        if self._entries.get(key) is entry and suggestion.start == entry.suggestion.start:
            entry.suggestion = suggestion

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def entry(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def lookup(self, key: str, text: str, offset: int) -> tuple[Entry, Suggestion] | None:
        """The rest of the cached suggestion if ``text`` (cursor at ``offset``) typed into it."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        found = self._match(entry, text, offset)
        if found is None:
            self.misses += 1
            if not self._could_still_match(entry, text):
                self._entries.pop(key, None)
            return None
        entry.hits += 1
        self.hits += 1
        return entry, found

    @staticmethod
    def _match(entry: Entry, text: str, offset: int) -> Suggestion | None:
        start = len(entry.before)
        cursor = start + len(entry.typed)
        if offset < cursor or len(text) - offset != len(entry.after):
            return None
        if not (text.startswith(entry.before) and text.endswith(entry.after)):
            return None
        if text[start:cursor] != entry.typed:
            return None
        typed = text[cursor:offset]
        rest = entry.suggestion.rebased(typed)
        if rest is None:
            return None
        return rest

    @staticmethod
    def _could_still_match(entry: Entry, text: str) -> bool:
        # Keep an entry across a request at another place in the same unchanged text (e.g. the
        # cursor moved away and back): only an edit invalidates it.
        return len(text) == len(entry.before) + len(entry.typed) + len(entry.after) and text == entry.before + entry.typed + entry.after
