"""Run one action: context -> prompt -> model -> placed, confined, verified edits.

The pipeline is split so the LSP layer can re-place a reply on newer text: :func:`prepare`
(pure, no model), the model call, then :func:`finish` (pure). :func:`run_action` chains them.
Nothing here returns a partial edit: ``finish`` either returns the whole result or raises.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from spark_ls.actions.catalog import INSTRUCTION_ACTION_ID, ActionSpec
from spark_ls.config import Settings
from spark_ls.context.document import Snapshot, SourceDocument
from spark_ls.context.picker import Scope, enclosing_scope, pick_context, syntax_errors
from spark_ls.diffs import Edit, PatchRefused, apply_reply, minimal_edits, unified_diff
from spark_ls.model import prompts
from spark_ls.model.types import ModelReply, ModelRequest

EditMode = Literal["diff", "scope"]


class ActionSession(Protocol):
    """What an action needs of a model session (spark_ls.model.session.ModelSession, or a wrapper
    such as the check runner's counting session)."""

    @property
    def model(self) -> str: ...

    @property
    def edit_format(self) -> str: ...

    async def complete(self, req: ModelRequest, *, on_delta: Callable[[str], None] | None = None) -> ModelReply: ...


@dataclass(frozen=True)
class ActionRequest:
    action: ActionSpec
    path: str
    snapshot: Snapshot
    start_line: int
    end_line: int
    diagnostic_message: str | None = None
    instruction: str | None = None  # free text (edit with instruction / --instruction)
    others: Sequence[tuple[str, Snapshot]] = ()
    # For "file" actions (source.fixAll): the (line, message) problems to fix; empty: the
    # file's syntax errors.
    problems: Sequence[tuple[int, str]] = ()


@dataclass(frozen=True)
class PreparedAction:
    request: ModelRequest
    mode: EditMode
    allowed: tuple[tuple[int, int], ...]
    scope: tuple[int, int]
    target: Scope | None
    path: str
    new_definitions: bool = False  # the action may add definitions next to its target


@dataclass(frozen=True)
class ActionResult:
    old_text: str
    new_text: str
    edits: list[Edit]
    path: str
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def diff(self) -> str:
        """The change as a unified diff (computed on demand: the editor path never needs it)."""
        return unified_diff(self.old_text, self.new_text, self.path)

    @property
    def changed(self) -> bool:
        return self.old_text != self.new_text


class _Unknown(enum.Enum):
    UNKNOWN = enum.auto()


_UNKNOWN = _Unknown.UNKNOWN


def describe_target(
    req: ActionRequest, scope: Scope | None | Literal[_Unknown.UNKNOWN] = _UNKNOWN
) -> dict[str, object]:
    """Placeholder values for titles and instructions (``scope``: the enclosing scope, if known)."""
    snapshot = req.snapshot
    if scope is _UNKNOWN:
        scope = enclosing_scope(snapshot, req.start_line, req.end_line)
    return {
        "name": scope.name if scope else "this code",
        "kind": scope.kind if scope else "code",
        "message": req.diagnostic_message,
        "line": req.start_line + 1,
        "language": snapshot.language.name if snapshot.language else "text",
        "selection_lines": f"{req.start_line + 1}-{req.end_line + 1}",
    }


def task_text(req: ActionRequest) -> str:
    values = describe_target(req)
    task = req.action.format_instruction(**values)
    if req.instruction:
        task = req.instruction if req.action.id == INSTRUCTION_ACTION_ID else f"{task}\n{req.instruction}"
    return task


def prepare(req: ActionRequest, model: str, edit_format: str, settings: Settings) -> PreparedAction:
    snapshot = req.snapshot
    context = pick_context(
        snapshot,
        req.start_line,
        req.end_line,
        path=req.path,
        budget_tokens=settings.context_budget,
        others=req.others,
    )
    allowed = [context.region]
    if req.action.allow_imports and context.import_region is not None:
        allowed.append(context.import_region)
    language = snapshot.language.name if snapshot.language else None
    task = task_text(req)
    mode: EditMode = "diff" if edit_format == "diff" else "scope"
    if mode == "diff":
        instructions, file_context, user_input = prompts.build_diff_prompt(
            model, path=req.path, language=language, task=task, context=context.prompt, region=context.region
        )
    else:
        first, last = context.region
        source = "".join(snapshot.lines[first : last + 1])
        target = context.target
        instructions, file_context, user_input = prompts.build_scope_prompt(
            model,
            path=req.path,
            language=language,
            task=task,
            kind=target.kind if target else "code",
            name=target.name if target else f"lines {first + 1}-{last + 1}",
            source=source,
        )
    return PreparedAction(
        request=ModelRequest(
            instructions=instructions, input=user_input, context=file_context, conversation=req.path
        ),
        mode=mode,
        allowed=tuple(allowed),
        scope=context.region,
        target=context.target,
        path=req.path,
        new_definitions=req.action.allow_new_definitions,
    )


def finish(prepared: PreparedAction, reply: ModelReply, snapshot: Snapshot) -> ActionResult:
    """Turn a model reply into verified edits on ``snapshot``'s text, or raise PatchRefused."""
    old = snapshot.text
    text = "" if prompts.says_no_change(reply.text, old) else reply.text  # the explicit "no change" answer
    new = apply_reply(
        old,
        text,
        path=prepared.path,
        mode=prepared.mode,
        allowed=prepared.allowed,
        scope=prepared.scope,
        language=snapshot.language,
        old_tree=snapshot.tree,  # the document's tree: verification needs no full re-parse
        old_lines=snapshot.lines,  # kept per edit by the document: no split of the whole text
        new_definitions=prepared.new_definitions,
    )
    return ActionResult(
        old_text=old,
        new_text=new,
        edits=minimal_edits(old, new),
        path=prepared.path,
        model=reply.model,
        usage=dict(reply.usage),
    )


async def run_action(
    req: ActionRequest,
    session: ActionSession,
    settings: Settings,
    *,
    on_delta: Callable[[str], None] | None = None,
) -> ActionResult:
    """Run ``req`` against ``session`` (a ModelSession). Raises PatchRefused or ModelError."""
    if req.action.applies_to == "file":
        return await _run_file_action(req, session, settings, on_delta=on_delta)
    prepared = prepare(req, session.model, session.edit_format, settings)
    reply = await session.complete(prepared.request, on_delta=on_delta)
    result = finish(prepared, reply, req.snapshot)
    return await review(req, prepared, result, session, settings)


def _unchanged(result: ActionResult) -> ActionResult:
    return dataclasses.replace(result, new_text=result.old_text, edits=[])


async def review(
    req: ActionRequest, prepared: PreparedAction, result: ActionResult, session: ActionSession, settings: Settings
) -> ActionResult:
    """Quality gates for fixes (issue #12), applied before a result is offered: a bug fix
    ("Fix bug": a quick fix on a scope) that changes no code — only comments, docstrings or
    layout — is no fix; with ``second_look`` the model must confirm a quick fix repairs a defect."""
    if not result.changed or not req.action.kind.startswith("quickfix"):
        return result
    language = req.snapshot.language.name if req.snapshot.language else None
    if req.action.applies_to == "scope":
        # A bug fix is the smallest change: guard clauses the task said not to add are removed
        # (the fix they came with stays); what remains must still change the program.
        stripped = strip_added_guards(result.old_text, result.new_text, language)
        if stripped is None:
            return _unchanged(result)
        if stripped != result.new_text:
            result = dataclasses.replace(result, new_text=stripped, edits=minimal_edits(result.old_text, stripped))
        if same_code(result.old_text, result.new_text, language):
            return _unchanged(result)
    if settings.second_look and not await second_look(req, prepared, result, session):
        return _unchanged(result)
    return result


def same_code(old: str, new: str, language: str | None) -> bool:
    """Whether two Python texts are the same program up to comments, docstrings and layout
    (other languages: never judged the same)."""
    if language != "python":
        return False
    import ast

    def normalised(text: str) -> str | None:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return None
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                    and isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        return ast.dump(tree, annotate_fields=False)

    before = normalised(old)
    return before is not None and before == normalised(new)


def _is_guard(node: object) -> bool:
    """An ``assert``, or an ``if`` (without ``else``) whose body only raises: input checking."""
    import ast

    if isinstance(node, ast.Assert):
        return True
    return (isinstance(node, ast.If) and not node.orelse and bool(node.body)
            and all(isinstance(stmt, ast.Raise) for stmt in node.body))


def strip_added_guards(old: str, new: str, language: str | None) -> str | None:
    """``new`` without the guard clauses (``assert``s, ``if ...: raise ...``) it adds to ``old``
    (Python; other languages: ``new`` unchanged). None when they cannot be removed cleanly (the
    guard shares a line with other code or is alone in its block)."""
    if language != "python" or old == new:
        return new
    import ast

    try:
        old_tree, new_tree = ast.parse(old), ast.parse(new)
    except (SyntaxError, ValueError):
        return new
    def body_of(guard: ast.AST) -> str:  # what it raises: kept when a fix corrects the condition
        return ast.dump(guard.msg) if isinstance(guard, ast.Assert) and guard.msg else ast.dump(
            ast.Module(body=getattr(guard, "body", []), type_ignores=[]))

    before = [ast.dump(node) for node in ast.walk(old_tree) if _is_guard(node)]
    after = [node for node in ast.walk(new_tree) if _is_guard(node)]
    unmatched = []
    for guard in after:
        if ast.dump(guard) in before:
            before.remove(ast.dump(guard))
        else:
            unmatched.append(guard)
    # An old guard gone and a new one raising the same thing: its condition was fixed, not added.
    gone = [body_of(node) for node in ast.walk(old_tree) if _is_guard(node) and ast.dump(node) in before]
    new_guards = []
    for guard in unmatched:
        if body_of(guard) in gone:
            gone.remove(body_of(guard))
        else:
            new_guards.append(guard)
    lines = new.splitlines(keepends=True)
    drop: set[int] = set()
    for node in ast.walk(new_tree):
        for attr in ("body", "orelse", "finalbody"):
            block = getattr(node, attr, None)
            if not isinstance(block, list):
                continue
            added = [s for s in block if any(s is g for g in new_guards)]
            if not added:
                continue
            if len(added) == len([s for s in block if isinstance(s, ast.stmt)]):
                return None  # nothing would be left in the block
            taken = {line for s in block if s not in added
                     for line in range(s.lineno - 1, (s.end_lineno or s.lineno))}
            for guard in added:
                span = set(range(guard.lineno - 1, guard.end_lineno or guard.lineno))
                if span & taken or lines[guard.lineno - 1][: guard.col_offset].strip():
                    return None  # on a line with other code
                drop |= span
    if not drop:
        return new
    stripped = "".join(line for index, line in enumerate(lines) if index not in drop)
    try:
        ast.parse(stripped)
    except (SyntaxError, ValueError):
        return None
    return stripped


async def second_look(
    req: ActionRequest, prepared: PreparedAction, result: ActionResult, session: ActionSession
) -> bool:
    """Ask the model whether ``result`` fixes a real defect (a short YES/NO request); False: drop it."""
    first, last = prepared.scope
    old_lines = result.old_text.splitlines(keepends=True)
    new_lines = result.new_text.splitlines(keepends=True)
    shift = len(new_lines) - len(old_lines)
    before = "".join(old_lines[first : last + 1])
    after = "".join(new_lines[first : max(first, last + 1 + shift)])
    snapshot = req.snapshot
    target = prepared.target
    instructions, user_input = prompts.build_second_look(
        session.model,
        language=snapshot.language.name if snapshot.language else None,
        kind=target.kind if target else "code",
        name=target.name if target else f"lines {first + 1}-{last + 1}",
        task=task_text(req),
        before=before,
        after=after,
    )
    reply = await session.complete(ModelRequest(instructions=instructions, input=user_input, max_output_tokens=16))
    return not prompts.second_look_says_no(reply.text)


MAX_FIX_ALL_STEPS = 20


async def _run_file_action(
    req: ActionRequest, session: ActionSession, settings: Settings, *, on_delta: Callable[[str], None] | None
) -> ActionResult:
    """Fix problems one at a time on the evolving text; the result is one combined edit.

    With explicit ``problems`` (e.g. another linter's findings) they are fixed bottom-up, so a fix
    never shifts the lines of the ones still to do. Without, the file's syntax errors are fixed,
    re-parsing after every fix: one real error often cascades into several reported ones, and a
    fix that does not reduce the number of errors ends the run.
    """
    original = req.snapshot
    current = original
    usage: dict[str, Any] = {}
    model = ""

    async def fix(line: int, message: str) -> None:
        nonlocal current, model
        last = max(0, len(current.lines) - 1)
        step = dataclasses.replace(
            req, snapshot=current, start_line=min(line, last), end_line=min(line, last), diagnostic_message=message
        )
        prepared = prepare(step, session.model, session.edit_format, settings)
        reply = await session.complete(prepared.request, on_delta=on_delta)
        result = finish(prepared, reply, current)
        model = result.model
        for key, value in result.usage.items():
            if isinstance(value, int):
                usage[key] = usage.get(key, 0) + value
        if result.changed:
            current = SourceDocument(result.new_text, original.language).snapshot()

    if req.problems:
        for line, message in sorted(req.problems, reverse=True):
            await fix(line, message)
    else:
        errors = syntax_errors(current)
        for _ in range(MAX_FIX_ALL_STEPS):
            if not errors:
                break
            await fix(errors[-1].start_line, errors[-1].message)
            remaining = syntax_errors(current)
            if len(remaining) >= len(errors):
                break  # no progress: stop rather than loop on the same problem
            errors = remaining
    old, new = original.text, current.text
    return ActionResult(old, new, minimal_edits(old, new), req.path, model, usage)


__all__ = [
    "ActionRequest",
    "ActionResult",
    "PatchRefused",
    "PreparedAction",
    "describe_target",
    "finish",
    "prepare",
    "run_action",
]
