"""Prompts for inline completions.

- **Fill-in-the-middle** for the embedded Qwen2.5-Coder model: its repository-level format,
  the stable context first as its own "file", then the window around the cursor::

      <|file_sep|>PATH (context)\\nHEADER<|file_sep|>PATH\\n<|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|>

- **Instruction prompting** for Responses / chat models: a constant instruction, the stable
  context as the request's ``context`` (sent first, so a provider's prompt cache reuses it
  between keystrokes), and the window with the cursor marked as the input.
"""

from __future__ import annotations

from spark_ls.inline.context import InlineContext
from spark_ls.model.types import ModelRequest

FIM_PREFIX = "<|fim_prefix|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_MIDDLE = "<|fim_middle|>"
FILE_SEP = "<|file_sep|>"
END_OF_TEXT = "<|endoftext|>"
FIM_STOP = [END_OF_TEXT, FILE_SEP, FIM_PREFIX, FIM_SUFFIX, "<|im_end|>", "\n\n\n"]
CURSOR = "<CURSOR>"

# Output budget: a block of MAX_LINES lines of ~60 characters.
MAX_OUTPUT_TOKENS = 256

INSTRUCTIONS = (
    "You are a code completion engine inside an editor. The user message shows a file excerpt "
    f"with the cursor marked {CURSOR}. Reply with ONLY the text to insert at the cursor: no "
    "explanation, no code fences, no cursor marker. Do not repeat text that comes before or "
    "after the cursor. Complete the current statement; when the cursor is on an empty line or "
    "the line opens a block, complete the block (at most 12 lines). Keep the file's indentation "
    "(write each line's full indentation, except on the first line where the cursor already is). "
    "If nothing should be inserted, reply with an empty message."
)


def fim_prompt(ctx: InlineContext) -> str:
    head = f"{FILE_SEP}{ctx.path} (context)\n{ctx.header}" if ctx.header else ""
    return f"{head}{FILE_SEP}{ctx.path}\n{FIM_PREFIX}{ctx.prefix}{FIM_SUFFIX}{ctx.suffix}{FIM_MIDDLE}"


def instruction_request(ctx: InlineContext) -> ModelRequest:
    fence = ctx.language or ""
    context = (
        f"Context from {ctx.path} (imports and definitions the excerpt uses):\n```{fence}\n{ctx.header}```"
        if ctx.header
        else ""
    )
    excerpt = f"File {ctx.path}, excerpt around the cursor:\n```{fence}\n{ctx.prefix}{CURSOR}{ctx.suffix}\n```"
    return ModelRequest(
        instructions=INSTRUCTIONS,
        input=excerpt,
        context=context,
        conversation=None,  # no chaining: each keystroke's excerpt is a fresh question
        max_output_tokens=MAX_OUTPUT_TOKENS,
    )
