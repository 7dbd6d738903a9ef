"""Inline completion with the embedded model, for real: `spark-ls serve` with no endpoint
configured runs Qwen2.5-Coder-1.5B in-process and completes by fill-in-the-middle. Slow (the model
loads, then a few seconds of CPU): run it under `flock /tmp/heavy.lock` on a shared machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from inline_helpers import apply_item, caps, items_of, position_of, request
from lsp_helpers import lsp_client, open_document, server_env, wait_ready
from lsprotocol import types

pytestmark = pytest.mark.slow

URI = Path("/tmp/spark-inline/fib.py").as_uri()


async def test_embedded_model_completes_a_line_by_fill_in_the_middle() -> None:
    source, pos = position_of(
        "def fib(n):\n    if n < 2:\n        return n\n    return |\n\n\nprint(fib(10))\n"
    )
    async with lsp_client(None, capabilities=caps(), env=server_env(None)) as client:
        status = await wait_ready(client, timeout=300)
        assert status["state"] == "ready" if isinstance(status, dict) else True
        open_document(client, URI, source)
        result = await client.text_document_inline_completion_async(request(pos, URI))
        items = items_of(result)
        assert len(items) == 1, result
        item = items[0]
        assert item.range == types.Range(start=pos, end=pos)
        new = apply_item(source, item)
        line = new.splitlines()[3]
        # Greedy decoding: the model's answer is the recursion, on this one line only.
        assert line.startswith("    return ") and "fib(n - 1)" in line.replace("n-1", "n - 1"), line
        assert new.endswith("\n\n\nprint(fib(10))\n")  # nothing after the statement changed
