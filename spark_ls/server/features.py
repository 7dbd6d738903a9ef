"""Features: plain classes the server owns, registered once, looked up by type (as in esbonio).

A feature reacts to document events through the hooks below; the registry calls every feature's
hook and isolates failures, so a broken feature (say, the prefetcher) can never stop text sync
or another feature. ``text_sync.py`` only notifies the registry; it does not know the features.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TypeVar

log = logging.getLogger("spark_ls.server")


class Feature:
    """Base class: every hook is optional (a no-op by default)."""

    def document_opened(self, uri: str) -> None:
        """A document was opened (its text is in the store)."""

    def document_changed(self, uri: str) -> None:
        """A document's text changed."""

    def document_closed(self, uri: str) -> None:
        """A document was closed (it is no longer in the store)."""

    def shutdown(self) -> None:
        """The client asked the server to shut down: cancel background work."""


F = TypeVar("F", bound=Feature)


class Features:
    """The server's features, at most one per class."""

    def __init__(self) -> None:
        self._by_type: dict[type[Feature], Feature] = {}

    def add(self, feature: F) -> F:
        if type(feature) in self._by_type:
            raise ValueError(f"{type(feature).__name__} is already registered")
        self._by_type[type(feature)] = feature
        return feature

    def get(self, cls: type[F]) -> F:
        """The registered feature of class ``cls`` (or a subclass); KeyError if there is none."""
        found = self.find(cls)
        if found is None:
            raise KeyError(f"no {cls.__name__} feature is registered")
        return found

    def find(self, cls: type[F]) -> F | None:
        feature = self._by_type.get(cls)
        if feature is None:
            feature = next((f for f in self._by_type.values() if isinstance(f, cls)), None)
        return feature if isinstance(feature, cls) else None

    def __iter__(self) -> Iterator[Feature]:
        return iter(list(self._by_type.values()))

    def document_opened(self, uri: str) -> None:
        for feature in self:
            self._call(feature, "document_opened", uri)

    def document_changed(self, uri: str) -> None:
        for feature in self:
            self._call(feature, "document_changed", uri)

    def document_closed(self, uri: str) -> None:
        for feature in self:
            self._call(feature, "document_closed", uri)

    def shutdown(self) -> None:
        for feature in self:
            self._call(feature, "shutdown")

    @staticmethod
    def _call(feature: Feature, hook: str, *args: str) -> None:
        try:
            getattr(feature, hook)(*args)
        except Exception:
            log.exception("feature %s failed in %s", type(feature).__name__, hook)
