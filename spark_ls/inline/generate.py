"""One model call for an inline completion, whatever the transport, stopped at the boundary.

``session`` is a :class:`spark_ls.model.session.ModelSession` (duck-typed: ``complete``, and
``supports_raw`` / ``complete_raw`` for fill-in-the-middle on the embedded model).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spark_ls.inline.context import InlineContext
from spark_ls.inline.postprocess import (
    MAX_LINES,
    Suggestion,
    finalize,
    first_line,
    unit_complete,
)
from spark_ls.inline.prompting import (
    FIM_STOP,
    MAX_OUTPUT_TOKENS,
    fim_prompt,
    instruction_request,
)


@dataclass
class Generation:
    """The state of one streamed generation (read by the LSP layer while it runs)."""

    ctx: InlineContext
    text: str = ""
    first_line_at: float | None = None  # loop time when the first complete line arrived
    complete: bool = False  # the unit is whole (boundary reached or the model finished)
    prompt_kind: str = ""  # "fim" | "instruction"
    model: str = ""

    def suggestion(self) -> Suggestion | None:
        return finalize(self.ctx, self.text)

    def first_line_suggestion(self) -> Suggestion | None:
        line = first_line(self.ctx, self.text)
        return finalize(self.ctx, line, max_lines=1) if line is not None else None


async def generate(
    session: Any,
    ctx: InlineContext,
    *,
    on_progress: Callable[[Generation], None] | None = None,
    max_lines: int = MAX_LINES,
) -> Generation:
    """Stream a completion for ``ctx``; return once the unit is complete (the rest of the
    generation is cancelled) or the model finished. Raises ModelError; cancellable."""
    gen = Generation(ctx)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_delta(delta: str) -> None:
        if gen.complete:
            return
        gen.text += delta
        if gen.first_line_at is None and first_line(ctx, gen.text) is not None:
            gen.first_line_at = loop.time()
        if unit_complete(ctx, gen.text, max_lines=max_lines):
            gen.complete = True
            if not done.done():
                done.set_result(None)
        if on_progress is not None:
            on_progress(gen)

    if getattr(session, "supports_raw", False):
        gen.prompt_kind = "fim"
        call = session.complete_raw(fim_prompt(ctx), max_tokens=MAX_OUTPUT_TOKENS, stop=FIM_STOP, on_delta=on_delta)
    else:
        gen.prompt_kind = "instruction"
        call = session.complete(instruction_request(ctx), on_delta=on_delta)
    task = asyncio.ensure_future(call)
    try:
        await asyncio.wait({task, done}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not task.done():
        # The boundary was reached. The embedded model has one slot: stop it now. A hosted
        # model's rest (bounded by MAX_OUTPUT_TOKENS) is left to finish: cancelling would retire
        # the pre-warmed socket, and the next keystroke would pay a new handshake.
        if gen.prompt_kind == "fim":
            task.cancel()
        else:
            task.add_done_callback(_discard)
        gen.complete = True
        return gen
    reply = task.result()  # raises the model's error
    gen.text = reply.text or gen.text
    gen.model = getattr(reply, "model", "")
    gen.complete = True
    if on_progress is not None:
        on_progress(gen)
    return gen


def _discard(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of an unneeded tail is not an error
