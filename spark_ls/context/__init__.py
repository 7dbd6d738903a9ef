"""tree-sitter context: the grammar registry, parsed documents and the context picker."""

from spark_ls.context.document import Snapshot, SourceDocument, snapshot_of, split_lines
from spark_ls.context.languages import (
    LanguageSpec,
    all_languages,
    language_for,
    reload_languages,
)
from spark_ls.context.picker import (
    Context,
    Scope,
    Section,
    SyntaxProblem,
    all_scopes,
    enclosing_scope,
    estimate_tokens,
    pick_context,
    syntax_errors,
)

__all__ = [
    "Context", "LanguageSpec", "Scope", "Section", "Snapshot", "SourceDocument", "SyntaxProblem",
    "all_languages", "all_scopes", "enclosing_scope", "estimate_tokens", "language_for",
    "pick_context", "reload_languages", "snapshot_of", "split_lines", "syntax_errors",
]
