"""A stand-in for the embedded model behind `spark-ls model-server` (tests/test_model_server.py,
tests/test_config_cli.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from spark_ls.model.types import ModelReply, ModelRequest


class ScriptedBackend:
    """Stands in for the embedded model: replies ``edited:<input>`` in two deltas."""

    name = "scripted-local"

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def complete(self, req: ModelRequest, on_delta: Callable[[str], None] | None = None) -> ModelReply:
        self.requests.append(req)
        text = f"edited:{req.input}"
        for piece in (text[:4], text[4:]):
            if on_delta is not None:
                on_delta(piece)
            await asyncio.sleep(0)
        return ModelReply(text=text, model=self.name, response_id=None, usage={"input_tokens": 7, "output_tokens": 3})

    async def close(self) -> None:
        self.closed = True
