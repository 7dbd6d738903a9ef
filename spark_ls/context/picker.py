"""Pick what a model needs to see to edit a range: the enclosing scope, imports, the class
around a method, and the definitions the code uses, within a token budget.

The work is split by concern; this module is the public face that re-exports it:

- :mod:`spark_ls.context.analysis`: per-snapshot cache and query helpers;
- :mod:`spark_ls.context.scopes`: functions/methods/classes (and :mod:`spark_ls.context.recovery`
  for files with syntax errors);
- :mod:`spark_ls.context.index`: those per top-level node, reused across snapshots, and the scope
  enclosing a range;
- :mod:`spark_ls.context.syntax`: syntax errors;
- :mod:`spark_ls.context.symbols`: imports, definitions and referenced names;
- :mod:`spark_ls.context.assembly`: section choice within the budget and prompt rendering.
"""

from __future__ import annotations

from spark_ls.context.analysis import Scope
from spark_ls.context.assembly import (
    FALLBACK_WINDOW_LINES,
    SMALL_DEFINITION_LINES,
    Context,
    Section,
    estimate_tokens,
    pick_context,
    render_prompt,
    warm,
)
from spark_ls.context.index import all_scopes, enclosing_scope
from spark_ls.context.scopes import SCOPE_KINDS
from spark_ls.context.syntax import SyntaxProblem, syntax_errors

__all__ = [
    "FALLBACK_WINDOW_LINES", "SCOPE_KINDS", "SMALL_DEFINITION_LINES", "Context", "Scope", "Section",
    "SyntaxProblem", "all_scopes", "enclosing_scope", "estimate_tokens", "pick_context", "render_prompt",
    "syntax_errors", "warm",
]
