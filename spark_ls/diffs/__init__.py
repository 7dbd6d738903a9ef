"""The diff engine: a model's reply -> a verified new text -> minimal edits.

See ARCHITECTURE.md for the contract. Nothing here imports pygls or lsprotocol.
"""

from spark_ls.diffs.apply import apply_diff, apply_reply, check_combined, check_confined
from spark_ls.diffs.edits import Edit, apply_edits, minimal_edits, unified_diff
from spark_ls.diffs.errors import PatchRefused
from spark_ls.diffs.parse import FileDiff, Hunk, HunkLine, names_document, parse_diff
from spark_ls.diffs.place import Placement, apply_placements, place_hunks
from spark_ls.diffs.scope import rewrite_scope
from spark_ls.diffs.verify import verify_syntax

__all__ = [
    "Edit",
    "FileDiff",
    "Hunk",
    "HunkLine",
    "PatchRefused",
    "Placement",
    "apply_diff",
    "apply_edits",
    "apply_placements",
    "apply_reply",
    "check_combined",
    "check_confined",
    "minimal_edits",
    "names_document",
    "parse_diff",
    "place_hunks",
    "rewrite_scope",
    "unified_diff",
    "verify_syntax",
]
