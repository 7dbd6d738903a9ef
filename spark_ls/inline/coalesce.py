"""Per key (a document), only the newest request runs: starting one cancels the one in flight.

Editors debounce keystrokes, but a burst still produces several requests; a stale generation
must not hold the model (or the local model's single slot) while the user has moved on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Superseded(Exception):
    """The request was cancelled because a newer one for the same key started."""


class LatestOnly:
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[object]] = {}
        self.started = 0
        self.superseded = 0

    def in_flight(self, key: str) -> asyncio.Task[object] | None:
        task = self._running.get(key)
        return task if task is not None and not task.done() else None

    def cancel(self, key: str) -> bool:
        task = self._running.pop(key, None)
        if task is not None and not task.done():
            task.cancel()
            self.superseded += 1
            return True
        return False

    def adopt(self, key: str, task: asyncio.Task[object]) -> None:
        """Track ``task`` (e.g. a block still generating after its first line was returned) so the
        next request for ``key`` cancels it."""
        self.cancel(key)
        self._running[key] = task

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` as the newest request for ``key``. Raises :class:`Superseded` when a newer
        request cancels it; cancelling the caller cancels the work too."""
        self.cancel(key)
        task: asyncio.Task[T] = asyncio.ensure_future(work())
        self._running[key] = task
        self.started += 1
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            if self._running.get(key) is task and task.done():
                del self._running[key]
        if task.cancelled():
            raise Superseded(key)
        return task.result()
