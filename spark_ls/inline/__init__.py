"""Inline completions (ghost text) and next-edit suggestions: the pure library.

No LSP types here (see ARCHITECTURE.md): plain strings, ``str`` offsets and dataclasses.

- :mod:`.context`   what the model sees around the cursor (tree-sitter picked, budgeted)
- :mod:`.prompting` fill-in-the-middle prompts (Qwen2.5-Coder) and instruction prompts (chat)
- :mod:`.postprocess` a raw reply -> one :class:`Suggestion` (range, boundary, indentation)
- :mod:`.cache`     typed-through suggestions are served again with no model call
- :mod:`.coalesce`  per document, a new request cancels the one in flight
- :mod:`.next_edit` Zeta-style next-edit prediction: recent edits, editable region, verified reply
"""

from spark_ls.inline.cache import SuggestionCache
from spark_ls.inline.coalesce import LatestOnly, Superseded
from spark_ls.inline.context import InlineContext, build_context
from spark_ls.inline.postprocess import Suggestion, finalize, unit_complete

__all__ = [
    "InlineContext",
    "LatestOnly",
    "Suggestion",
    "SuggestionCache",
    "Superseded",
    "build_context",
    "finalize",
    "unit_complete",
]
