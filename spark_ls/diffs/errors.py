"""The one way the diff engine says no."""

from __future__ import annotations


class PatchRefused(Exception):
    """The model's reply cannot be applied safely; nothing was changed.

    ``reason`` is human-readable and, when a hunk is to blame, names it (1-based, in reply order).
    """

    def __init__(self, reason: str, *, hunk: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hunk = hunk

    def __str__(self) -> str:
        return self.reason
