"""textDocument/inlineCompletion (LSP 3.18): ghost text from the model session.

Thin: the work is in :mod:`spark_ls.inline`. Per request, on an immutable snapshot:

1. a suggestion the user is typing into is served from the cache (no model call);
2. a next-edit prediction made for this very text, if it edits the cursor's line, is offered
   as an item whose range spans the edit;
3. otherwise the model is asked (a newer request for the document cancels this one); the
   handler returns as soon as the unit (statement / block) is whole. When a block is still
   generating ``FIRST_LINE_GRACE`` after its first line arrived, the first line is returned and
   the rest keeps generating into the cache: the next request (after the user accepts or types
   through the line) gets it at once.

Disabled (empty result, the reason told once via window/showMessage and ``spark/inlineStatus``)
when the setting is off, the document is over ``max_document_chars``, or no model is usable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from spark_ls.config import Settings
from spark_ls.inline.cache import SuggestionCache
from spark_ls.inline.coalesce import LatestOnly, Superseded
from spark_ls.inline.context import StableSection, build_context
from spark_ls.inline.generate import Generation, generate
from spark_ls.inline.next_edit import EditHistory
from spark_ls.inline.postprocess import Suggestion
from spark_ls.inline.stable import FRESH, StableContext, place_of
from spark_ls.model.types import ModelError
from spark_ls.server.convert import offset_at, position_at
from spark_ls.server.documents import DocumentNotOpen, DocumentSnapshot
from spark_ls.server.features import Feature

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server.inline")

FIRST_LINE_GRACE = 0.15  # seconds a block may take after its first line before that line is shown
# Stable context (imports, referenced definitions: whole-file analysis) is reused while the cursor
# stays in the same scope (spark_ls.inline.stable). When it is stale, files up to this many lines
# recompute it on the spot; larger ones keep using the stale sections and recompute once the user
# pauses for STABLE_REFRESH_IDLE seconds, so no keystroke pays for a whole-file analysis.
SYNC_STABLE_LINES = 1500
STABLE_REFRESH_IDLE = 0.25
INLINE_BUDGET_TOKENS = 1024
# The embedded model evaluates ~80 prompt tokens/s on two cores: a smaller window keeps a
# completion within a few seconds (llama.cpp reuses the unchanged prompt prefix between requests).
INLINE_BUDGET_TOKENS_LOCAL = 384
LASTING = frozenset({"auth", "config", "unavailable", "pinned", "retired"})


class InlineCompletions(Feature):
    """The feature's state: one cache, one coalescer, recent edits and next-edit results."""

    def document_opened(self, uri: str) -> None:
        """Remember each document's text as opened, so the first edit is in the recent edits
        (a reference to the text is all it costs; the diffs are computed at request time), and
        compute a first stable context (its imports) once the opening work is done."""
        doc = self.server.documents.get(uri)
        if doc is not None:
            self.history.forget(doc.uri)
            self.history.observe(doc.uri, doc.path, doc.document.text)
            self.stable.forget(uri)
            self._schedule_refresh(uri, 0, self._budget(uri), delay=0.05)

    def document_closed(self, uri: str) -> None:
        self.history.forget(uri)
        self.stable.forget(uri)
        self.cache.drop(uri)
        self.latest.cancel(uri)
        self.next_edits.pop(uri, None)
        self._refresh_at.pop(uri, None)
        handle = self._refresh.pop(uri, None)
        if handle is not None:
            handle.cancel()

    def shutdown(self) -> None:
        for handle in self._refresh.values():
            handle.cancel()
        self._refresh.clear()

    def __init__(self, server: SparkLanguageServer) -> None:
        self.server = server
        self.cache = SuggestionCache()
        self.latest = LatestOnly()
        self.history = EditHistory()
        # uri -> (the text it was predicted for, the text after the edit): the last prediction
        self.next_edits: dict[str, tuple[str, str]] = {}
        self._told: set[str] = set()
        self.stable = StableContext()
        # uri -> the pending stable-context refresh (a timer reset by each request) and its cursor
        self._refresh: dict[str, asyncio.TimerHandle] = {}
        self._refresh_at: dict[str, tuple[int, int]] = {}
        self.stats: dict[str, Any] = {"requests": 0, "cache_hits": 0, "model_calls": 0, "superseded": 0,
                                      "first_line_early": 0, "errors": 0, "last_ms": None}

    # -- disabled ---------------------------------------------------------------------------
    def disabled_reason(self, uri: str, settings: Settings | None = None) -> str | None:
        """Why no suggestion can be made for ``uri`` (None: they can). ``settings``: the
        document's, when the caller has its snapshot (they travel with it)."""
        ls = self.server
        if not getattr(settings if settings is not None else ls.settings_for(uri), "inline_completion", True):
            return "inline completions are turned off (inline_completion = false)"
        doc = ls.documents.get(uri)
        if doc is not None and doc.oversized:
            return f"{doc.path.rsplit('/', 1)[-1]} is larger than max_document_chars = {doc.max_chars:,}"
        return ls.problem

    def tell_disabled(self, reason: str) -> None:
        ls = self.server
        ls.protocol.notify("spark/inlineStatus", {"enabled": False, "reason": reason})
        if reason not in self._told:
            self._told.add(reason)
            ls.notify_user("warning", f"inline completions disabled: {reason}")

    # -- the request ------------------------------------------------------------------------
    async def complete(self, params: types.InlineCompletionParams) -> types.InlineCompletionList | None:
        ls = self.server
        uri = params.text_document.uri
        self.stats["requests"] += 1
        started = time.perf_counter()
        try:
            snap = ls.documents.snapshot(uri)
        except DocumentNotOpen:
            snap = None  # a request racing a didClose (or for a file never opened): nothing to suggest
        reason = self.disabled_reason(uri, snap.settings if snap is not None else None)
        if reason is not None:
            self.tell_disabled(reason)
            return None
        if snap is None:
            return None
        offset = to_offset(snap, params.position, ls.encoding)
        self.history.observe(uri, snap.path, snap.text, offset, snap.source.line_starts())

        found = await self._from_cache(uri, snap, offset)
        if found is not None:
            self.stats["cache_hits"] += 1
            return self._items(snap, found, started)
        nes = self._next_edit_item(uri, snap, offset)
        if nes is not None:
            return self._items(snap, nes, started)
        try:
            suggestion, pending = await self.latest.run(uri, lambda: self._ask(uri, snap, offset))
        except Superseded:
            self.stats["superseded"] += 1
            return None
        except ModelError as exc:
            self.stats["errors"] += 1
            if exc.kind in LASTING:
                self.tell_disabled(exc.message)
            else:
                log.info("inline completion failed: %s", exc.message)
            return None
        if pending is not None:
            self.latest.adopt(uri, pending)
        if suggestion is None:
            return None
        return self._items(snap, suggestion, started)

    async def _from_cache(self, uri: str, snap: DocumentSnapshot, offset: int) -> Suggestion | None:
        entry = self.cache.entry(uri)
        if entry is not None and entry.pending is not None and not entry.pending.done():
            # The user took the first line of a block still generating: wait for the rest
            # instead of asking again.
            s = entry.suggestion
            accepted = entry.before + entry.typed + s.new_text + entry.after[s.end - s.start :]
            if snap.text == accepted and offset == len(entry.before) + len(entry.typed) + len(s.new_text):
                await asyncio.wait({entry.pending}, timeout=ls_timeout(self.server))
        hit = self.cache.lookup(uri, snap.text, offset)
        return hit[1] if hit is not None else None

    async def _ask(self, uri: str, snap: DocumentSnapshot, offset: int) -> tuple[Suggestion | None, asyncio.Task[Any] | None]:
        ls = self.server
        session = await ls.ready_session()
        budget = self._budget(uri, snap.settings)
        ctx = build_context(
            snap.source, offset, path=snap.path, budget_tokens=budget,
            sections=self.sections_for(uri, snap, offset, budget),
        )
        first_ready = asyncio.Event()
        seen: list[Generation] = []

        def progress(gen: Generation) -> None:
            if not seen:
                seen.append(gen)
            if gen.first_line_at is not None:
                first_ready.set()

        self.stats["model_calls"] += 1
        full: asyncio.Task[Generation] = asyncio.ensure_future(generate(session, ctx, on_progress=progress))
        waiter = asyncio.ensure_future(first_ready.wait())
        try:
            await asyncio.wait({full, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not full.done():
                await asyncio.wait({full}, timeout=FIRST_LINE_GRACE)
        except asyncio.CancelledError:
            full.cancel()
            raise
        finally:
            waiter.cancel()
        line_start = ctx.line_start
        if full.done():
            gen = full.result()
            suggestion = gen.suggestion()
            if suggestion is not None:
                self.cache.put(uri, snap.text, line_start, suggestion)
            return suggestion, None
        # The block is slow: show its first line now, let the rest generate into the cache.
        partial = seen[0] if seen else None
        first = partial.first_line_suggestion() if partial is not None else None
        if first is None:
            gen = await full
            suggestion = gen.suggestion()
            if suggestion is not None:
                self.cache.put(uri, snap.text, line_start, suggestion)
            return suggestion, None
        self.stats["first_line_early"] += 1
        pending: asyncio.Future[Suggestion | None] = asyncio.get_running_loop().create_future()
        entry = self.cache.put(uri, snap.text, line_start, first, pending)

        def finished(task: asyncio.Task[Generation]) -> None:
            result: Suggestion | None = None
            if not task.cancelled() and task.exception() is None:
                result = task.result().suggestion()
                if result is not None:
                    self.cache.extend(uri, entry, result)
            if not pending.done():
                pending.set_result(result)

        full.add_done_callback(finished)
        return first, full

    def sections_for(self, uri: str, snap: DocumentSnapshot, offset: int, budget: int) -> tuple[StableSection, ...]:
        """Stable context for the cursor: reused while fresh (same scope, recent); otherwise
        recomputed now on a small file, or on a large one (where the whole-file analysis costs
        milliseconds) used as it is and recomputed when the user pauses."""
        source = snap.source
        state, sections = self.stable.lookup(uri, place_of(source, offset, budget))
        if state == FRESH:
            return sections
        if source.line_count <= SYNC_STABLE_LINES:
            return self.stable.compute(uri, source, offset, path=snap.path, budget=budget,
                                       others=self.server.documents.others(uri))
        self._schedule_refresh(uri, offset, budget)
        return sections

    def _schedule_refresh(self, uri: str, offset: int, budget: int, delay: float = STABLE_REFRESH_IDLE) -> None:
        """(Re)start the timer that recomputes ``uri``'s stable context for ``offset``: every
        request pushes it back, so it runs once the user pauses, on the event loop."""
        handle = self._refresh.pop(uri, None)
        if handle is not None:
            handle.cancel()
        self._refresh_at[uri] = (offset, budget)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refresh[uri] = loop.call_later(delay, self._refresh_now, uri)

    def _refresh_now(self, uri: str) -> None:
        self._refresh.pop(uri, None)
        offset, budget = self._refresh_at.pop(uri, (0, 0))
        doc = self.server.documents.get(uri)
        if doc is None or doc.oversized or not budget:
            return
        snap = doc.snapshot()
        try:
            self.stable.compute(uri, snap.source, min(offset, len(snap.text)), path=snap.path, budget=budget,
                                others=self.server.documents.others(uri))
        except Exception:  # background work: a failure only means no header
            log.exception("stable context for %s failed", uri)

    def _budget(self, uri: str, settings: Settings | None = None) -> int:
        settings = settings if settings is not None else self.server.settings_for(uri)
        return min(inline_budget(self.server.session), settings.context_budget)

    def _next_edit_item(self, uri: str, snap: DocumentSnapshot, offset: int) -> Suggestion | None:
        """The cursor line's part of a next edit predicted for exactly this text, as an item
        spanning it (clients render single-line ranges; the rest stays with spark/nextEdit)."""
        found = self.next_edits.get(uri)
        if found is None or found[0] != snap.text:
            return None
        return cursor_line_edit(snap.text, found[1], offset)

    def _items(self, snap: DocumentSnapshot, s: Suggestion, started: float) -> types.InlineCompletionList:
        enc = self.server.encoding
        self.stats["last_ms"] = round((time.perf_counter() - started) * 1000, 2)
        item = types.InlineCompletionItem(
            insert_text=s.new_text,
            range=types.Range(start=to_position(snap, s.start, enc), end=to_position(snap, s.end, enc)),
        )
        return types.InlineCompletionList(items=[item])


def cursor_line_edit(old: str, new: str, offset: int) -> Suggestion | None:
    """The change ``new`` makes to the cursor's line of ``old``, as one replacement containing
    the cursor (None when the line is unchanged, or lines were added or removed)."""
    old_lines, new_lines = old.split("\n"), new.split("\n")
    if len(old_lines) != len(new_lines):
        return None
    line = old.count("\n", 0, offset)
    line_start = old.rfind("\n", 0, offset) + 1
    old_line, new_line = old_lines[line], new_lines[line]
    line_end = line_start + len(old_line)
    if new_line == old_line:
        return None
    p = 0
    while p < min(len(old_line), len(new_line)) and old_line[p] == new_line[p]:
        p += 1
    q = 0
    while q < min(len(old_line), len(new_line)) - p and old_line[-1 - q] == new_line[-1 - q]:
        q += 1
    start, end = line_start + p, line_end - q
    replacement = new_line[p : len(new_line) - q]
    lo, hi = min(start, offset), max(end, offset)
    return Suggestion(lo, hi, old[lo:start] + replacement + old[end:hi])


# Positions <-> offsets through the document's line table, which the document keeps up to date
# per edit (spark_ls.context.document): O(log n), no scan of the text on the keystroke path.
def to_offset(snap: DocumentSnapshot, position: types.Position, encoding: str) -> int:
    return offset_at(snap.index(), position, encoding)


def to_position(snap: DocumentSnapshot, offset: int, encoding: str) -> types.Position:
    return position_at(snap.index(), offset, encoding)


def inline_budget(session: Any) -> int:
    return INLINE_BUDGET_TOKENS_LOCAL if getattr(session, "supports_raw", False) else INLINE_BUDGET_TOKENS


def ls_timeout(server: SparkLanguageServer) -> float:
    s = server.settings
    return float(s.local_request_timeout if s.uses_local_model else s.request_timeout)


def register(server: SparkLanguageServer) -> None:
    feature = server.features.add(InlineCompletions(server))
    server.inline = feature  # type: ignore[attr-defined]

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: SparkLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        return await feature.complete(params)
