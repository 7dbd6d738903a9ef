"""Prompt templates, versioned per model family.

A pinned model keeps the template it was tuned with: templates are looked up by the *family* of
the model in use, and each family's template carries a version that is recorded with every
request (it is part of the instructions text, so record/replay cassettes change when it does).
Changing a template means adding a new version, never editing one in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptTemplate:
    family: str
    version: str
    edit_format: str  # "diff" | "scope"
    instructions: str
    context: str


_DIFF_INSTRUCTIONS = """\
You are spark-ls, a code editing engine inside a code editor ({template}).
You receive one file's relevant context with line numbers and a task.
Reply with ONLY a unified diff against the file `{path}` that performs the task with the smallest
possible change:
- headers `--- a/{path}` and `+++ b/{path}`, then hunks `@@ -l,n +l,n @@` with 3 lines of context;
- copy context and removed lines exactly (without the line-number gutter);
- change only lines {region}; new imports may go in the import block;
- keep the file's indentation style; no explanations, no code fences.
If nothing should change, reply with nothing at all."""

_DIFF_CONTEXT = """\
File `{path}` ({language}), relevant context:

{context}"""

# Identical for every request on a file (no function name in it): llama.cpp then reuses the
# cached prompt prefix, which cut a second edit on a 2,000-token file from ~45 s to ~3 s.
_SCOPE_INSTRUCTIONS = """\
You are a code editing engine ({template}). Reply with ONLY the complete rewritten function or
class named in the task, in a single ```{fence} code block, followed by nothing. Keep its name and
signature unless the task says otherwise. If the task needs a new import, put the import line
first in the same block. No explanation."""

_SCOPE_CONTEXT = """\
File {path}:
```{fence}
{source}
```"""

# The file context travels separately so consecutive requests on an unchanged file can be chained
# (previous_response_id) without resending it; a chained turn must not assume earlier proposals
# were applied, since an applied edit changes the context and breaks the chain.
_TASK = "Task: {task}\n(The file is exactly as shown above; no earlier proposal was applied.)"

TEMPLATES: dict[str, PromptTemplate] = {
    "openai-codex": PromptTemplate("openai-codex", "diff-v1", "diff", _DIFF_INSTRUCTIONS, _DIFF_CONTEXT),
    "generic": PromptTemplate("generic", "diff-v1", "diff", _DIFF_INSTRUCTIONS, _DIFF_CONTEXT),
    "qwen-coder": PromptTemplate("qwen-coder", "scope-v2", "scope", _SCOPE_INSTRUCTIONS, _SCOPE_CONTEXT),
    "generic-scope": PromptTemplate("generic-scope", "scope-v2", "scope", _SCOPE_INSTRUCTIONS, _SCOPE_CONTEXT),
}

_FAMILY_PATTERNS = (
    (re.compile(r"^(gpt-5|gpt-4\.1|o\d|codex|gpt-oss)", re.IGNORECASE), "openai-codex"),
    (re.compile(r"qwen.*coder", re.IGNORECASE), "qwen-coder"),
)


def family_of(model: str) -> str:
    for pattern, family in _FAMILY_PATTERNS:
        if pattern.search(model):
            return family
    return "generic"


def template_for(model: str, edit_format: str) -> PromptTemplate:
    """The template for ``model`` that produces ``edit_format`` replies."""
    family = family_of(model)
    template = TEMPLATES.get(family)
    if template is None or template.edit_format != edit_format:
        template = TEMPLATES["generic" if edit_format == "diff" else "generic-scope"]
    return template


def fence_language(language: str | None) -> str:
    return {"cpp": "cpp", "c": "c", "tsx": "tsx"}.get(language or "", language or "")


def build_diff_prompt(
    model: str, *, path: str, language: str | None, task: str, context: str, region: tuple[int, int]
) -> tuple[str, str, str]:
    """(instructions, context, input) asking for a unified diff. ``region`` is 0-based inclusive."""
    t = template_for(model, "diff")
    template_id = f"{t.family}/{t.version}"
    instructions = t.instructions.format(
        template=template_id, path=path, region=f"{region[0] + 1}-{region[1] + 1}"
    )
    file_context = t.context.format(path=path, language=language or "text", context=context)
    return instructions, file_context, _TASK.format(task=task)


def build_scope_prompt(
    model: str, *, path: str, language: str | None, task: str, kind: str, name: str, source: str
) -> tuple[str, str, str]:
    """(instructions, context, input) asking for the rewritten scope ``name`` (small local models)."""
    t = template_for(model, "scope")
    template_id = f"{t.family}/{t.version}"
    fence = fence_language(language)
    instructions = t.instructions.format(template=template_id, fence=fence)
    user_input = f"Rewrite the {kind} `{name}`.\n" + _TASK.format(task=task)
    return instructions, t.context.format(path=path, fence=fence, source=source), user_input
