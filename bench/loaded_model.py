"""A model session loaded once and handed to many in-process ``spark-ls check`` runs (the embedded
model's benchmarks): ``close()`` is a no-op and every reply's usage is kept."""

from __future__ import annotations

from typing import Any


class SharedSession:
    def __init__(self, session: Any) -> None:
        self._session = session
        self.usages: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def complete(self, req: Any, **kwargs: Any) -> Any:
        reply = await self._session.complete(req, **kwargs)
        self.usages.append(dict(reply.usage))
        return reply

    async def close(self) -> None:
        return None
