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

# diff-v2: "no change" is the expected answer for correct code (fewer false alarms, issue #12).
_DIFF_INSTRUCTIONS_V2 = _DIFF_INSTRUCTIONS + """
Most code you are shown is correct. When the task is to fix a bug and you cannot point to a
definite bug, or the code already does what the task asks, nothing should change: that is the
expected answer, not a failure."""

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

# scope-v3: the same, plus an explicit "no change" answer (small models will not reply with
# nothing, but they reliably write these two words).
_SCOPE_INSTRUCTIONS_V3 = _SCOPE_INSTRUCTIONS + """
If the code already does what the task asks - for a bug fix: if you cannot point to a definite
bug - reply with exactly NO CHANGE instead. Most code you are shown is correct, so NO CHANGE is
often the right answer."""

# v4 (diff-v3, scope-v4): what makes a bug fix lives in the instructions, which every request
# shares, so llama.cpp evaluates it once per session instead of once per "Fix bug" (the task, after
# the file context, is never cached); and a fix keeps every other line (issue #12: the minimal fix).
_BUG_FIX_RULES = """
Bug fixes: Most code you are shown is correct. Change code only for a definite bug - code that
contradicts its name, documentation, comments or evident intent: a wrong operator or comparison,
an off-by-one, a wrong variable, a missing case. Fix it with the smallest change and keep every
other line exactly as it is: no added checks, guards, error handling, comments or style changes."""

_DIFF_INSTRUCTIONS_V3 = _DIFF_INSTRUCTIONS + """
When the task is to fix a bug and you cannot point to a definite bug, or the code already does
what the task asks, nothing should change: that is the expected answer, not a failure.""" + _BUG_FIX_RULES

_SCOPE_INSTRUCTIONS_V4 = _SCOPE_INSTRUCTIONS + """
If the code already does what the task asks, or a bug fix finds no definite bug, reply with
exactly NO CHANGE instead; for a bug fix that is the usual answer.""" + _BUG_FIX_RULES

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
    "openai-codex": PromptTemplate("openai-codex", "diff-v3", "diff", _DIFF_INSTRUCTIONS_V3, _DIFF_CONTEXT),
    "generic": PromptTemplate("generic", "diff-v3", "diff", _DIFF_INSTRUCTIONS_V3, _DIFF_CONTEXT),
    "qwen-coder": PromptTemplate("qwen-coder", "scope-v4", "scope", _SCOPE_INSTRUCTIONS_V4, _SCOPE_CONTEXT),
    "generic-scope": PromptTemplate("generic-scope", "scope-v4", "scope", _SCOPE_INSTRUCTIONS_V4, _SCOPE_CONTEXT),
}
# Earlier versions, kept so the history is readable (and for a family that wants to pin one).
PREVIOUS_TEMPLATES: dict[str, PromptTemplate] = {
    "diff-v1": PromptTemplate("generic", "diff-v1", "diff", _DIFF_INSTRUCTIONS, _DIFF_CONTEXT),
    "diff-v2": PromptTemplate("generic", "diff-v2", "diff", _DIFF_INSTRUCTIONS_V2, _DIFF_CONTEXT),
    "scope-v2": PromptTemplate("generic-scope", "scope-v2", "scope", _SCOPE_INSTRUCTIONS, _SCOPE_CONTEXT),
    "scope-v3": PromptTemplate("generic-scope", "scope-v3", "scope", _SCOPE_INSTRUCTIONS_V3, _SCOPE_CONTEXT),
}

_NO_CHANGE = re.compile(r"^\W*no\s+changes?(\s+(is\s+)?needed|\s+required)?\W*$", re.IGNORECASE)


def is_no_change(reply: str) -> bool:
    """Whether a reply is the explicit "no change" answer (possibly fenced or punctuated)."""
    text = reply.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[\w+-]*\s*|\s*```$", "", text)
    return bool(_NO_CHANGE.match(text.strip()))

_COMMENT_LEADER = re.compile(r"^\s*[+]?\s*(#+|//+|--|/\*+|\*+)?")


def says_no_change(reply: str, original: str = "") -> bool:
    """Whether a reply answers "no change": the whole reply, or a line of it that is only those
    words (bare or as a comment, e.g. a rewrite followed by ``# No change needed``), unless that
    line is already in ``original``. A small model often rewrites the code *and* says no change;
    its verdict is the words (issue #12: the rewrite was a false alarm)."""
    if is_no_change(reply):
        return True
    existing = {line.strip() for line in original.splitlines()}
    for line in reply.splitlines():
        words = _COMMENT_LEADER.sub("", line, count=1).strip().rstrip("*/").strip()
        if words and _NO_CHANGE.match(words) and line.strip().lstrip("+").strip() not in existing:
            return True
    return False


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


def scope_instructions(model: str, language: str | None) -> str:
    """The instructions every scope-rewrite action sends for ``language`` (the cached prefix)."""
    t = template_for(model, "scope")
    return t.instructions.format(template=f"{t.family}/{t.version}", fence=fence_language(language))


def build_scope_prompt(
    model: str, *, path: str, language: str | None, task: str, kind: str, name: str, source: str
) -> tuple[str, str, str]:
    """(instructions, context, input) asking for the rewritten scope ``name`` (small local models)."""
    t = template_for(model, "scope")
    fence = fence_language(language)
    instructions = scope_instructions(model, language)
    user_input = f"Rewrite the {kind} `{name}`.\n" + _TASK.format(task=task)
    return instructions, t.context.format(path=path, fence=fence, source=source), user_input


# ------------------------------------------------------------------ second look

_SECOND_LOOK = """\
You review a proposed change to one {kind} ({template}). Answer with exactly one word:
YES if the original code has a real defect (it cannot do what its name, documentation and use
evidently intend) and the change fixes it; NO if the original was already correct, or the change
only adds checks, style or behaviour nobody asked for, or does not fix the defect."""


def build_second_look(
    model: str, *, language: str | None, kind: str, name: str, task: str, before: str, after: str
) -> tuple[str, str]:
    """(instructions, input) asking whether a proposed fix repairs a real defect (YES/NO)."""
    fence = fence_language(language)
    instructions = _SECOND_LOOK.format(kind=kind, template="second-look-v1")
    user_input = (
        f"Task given: {task}\n\nOriginal {kind} `{name}`:\n```{fence}\n{before.rstrip()}\n```\n\n"
        f"Proposed:\n```{fence}\n{after.rstrip()}\n```\n\nDoes the proposed change fix a real defect? YES or NO."
    )
    return instructions, user_input


def second_look_says_no(reply: str) -> bool:
    """True when the reply rejects the change; anything unclear keeps it."""
    words = re.findall(r"[A-Za-z]+", reply)
    return bool(words) and words[0].lower() == "no"
