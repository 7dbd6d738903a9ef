"""Warm the embedded model's prompt when the first document opens.

A new process starts with an empty KV cache, so the first action would evaluate the whole
instructions text (~230 tokens, several seconds on two cores) before its own code. The first
opened document tells which instructions its actions will send (they name its language), so
they are evaluated then, in the background, while the user reads the code. A prompt state saved
on disk by an earlier process makes this a no-op (the first action restores it instead).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from spark_ls.model.prompts import scope_instructions
from spark_ls.model.types import ModelError
from spark_ls.server.features import Feature

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server")


class PromptWarming(Feature):
    """At most one warm-up per server, for the first opened document's language."""

    def __init__(self, server: SparkLanguageServer) -> None:
        self.server = server
        self.task: asyncio.Task[int] | None = None

    def document_opened(self, uri: str) -> None:
        if self.task is not None or not self.server.settings.uses_local_model:
            return
        doc = self.server.documents.get(uri)
        if doc is None or doc.language is None:
            return
        self.task = asyncio.get_running_loop().create_task(self._warm(doc.language.name))

    def shutdown(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _warm(self, language: str) -> int:
        try:
            session = await self.server.ready_session()
            if session.edit_format != "scope":
                return 0
            evaluated = await session.warm_prompt(scope_instructions(session.model, language))
        except ModelError as exc:
            log.debug("prompt warm-up skipped: %s", exc.message)
            return 0
        if evaluated:
            log.info("embedded model: %d prompt tokens of the %s instructions evaluated ahead of the first action", evaluated, language)
        return evaluated
