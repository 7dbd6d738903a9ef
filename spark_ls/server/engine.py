"""Running an action for the LSP layer: snapshot, relocation on stale text, progress, prefetch.

Shared by codeAction/resolve, workspace/executeCommand and speculative prefetch. The action data
carried by a listed CodeAction is a plain dict (see :func:`action_data`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Any, Callable

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from spark_ls.actions.catalog import INSTRUCTION_ACTION_ID, ActionSpec, find_action
from spark_ls.actions.run import (
    ActionRequest,
    ActionResult,
    finish,
    prepare,
    review,
    run_action,
)
from spark_ls.context.picker import all_scopes, syntax_errors
from spark_ls.diffs import PatchRefused
from spark_ls.model.types import ModelError
from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.convert import text_document_edit
from spark_ls.server.documents import DocumentNotOpen, DocumentSnapshot
from spark_ls.server.verification import VerificationRefused, remember, verify_fix

log = logging.getLogger("spark_ls.server")

REQUEST_FAILED = -32803  # LSP RequestFailed

INSTRUCTION_ACTION = ActionSpec(
    id=INSTRUCTION_ACTION_ID,
    title="Edit with instruction",
    kind="refactor.rewrite",
    instruction="{instruction}",
    applies_to="selection",
    allow_imports=True,
)


class _ExpectedFailures(logging.Filter):
    """pygls logs every failed request with a full traceback at ERROR. A refused edit or a model
    error is an expected outcome, already logged by spark-ls as one readable line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, JsonRpcException) and exc.code == REQUEST_FAILED)


logging.getLogger("pygls.protocol.json_rpc").addFilter(_ExpectedFailures())


class ActionRefused(Exception):
    """The action cannot run or its result cannot be applied; the message says why."""


def action_data(
    snapshot: DocumentSnapshot,
    action: ActionSpec,
    start_line: int,
    end_line: int,
    *,
    message: str | None = None,
    scope: Any = None,
    instruction: str | None = None,
) -> dict[str, Any]:
    return {
        "uri": snapshot.uri,
        "version": snapshot.version,
        "action": action.id,
        "start_line": start_line,
        "end_line": end_line,
        "message": message,
        "scope": scope.name if scope else None,
        "scope_kind": scope.kind if scope else None,
        "scope_start": scope.start_line if scope else None,
        "instruction": instruction,
    }


def locate(snapshot: DocumentSnapshot, data: dict[str, Any]) -> tuple[int, int]:
    """The action's line range on ``snapshot``, following its scope if the text moved on."""
    start, end = int(data["start_line"]), int(data["end_line"])
    line_count = max(1, len(snapshot.source.lines))
    if data.get("version") == snapshot.version:
        return min(start, line_count - 1), min(end, line_count - 1)
    name = data.get("scope")
    if name:
        candidates = [
            s for s in all_scopes(snapshot.source) if s.name == name and s.kind == data.get("scope_kind")
        ]
        if not candidates:
            raise ActionRefused(f"`{name}` is no longer in the document; list the actions again")
        old_start = data.get("scope_start") if data.get("scope_start") is not None else start
        best = min(candidates, key=lambda s: abs(s.start_line - old_start))
        shift = best.start_line - old_start
        return max(0, start + shift), min(line_count - 1, end + shift)
    if end >= line_count:
        raise ActionRefused("the document changed and the action's lines no longer exist; list the actions again")
    return start, end


def _action_for(server: SparkLanguageServer, data: dict[str, Any]) -> ActionSpec:
    if data.get("action") == INSTRUCTION_ACTION.id:
        return INSTRUCTION_ACTION
    action = find_action(server.catalog_for(str(data.get("uri"))), str(data.get("action")))
    if action is None:
        raise ActionRefused(f"unknown action {data.get('action')!r}")
    return action


def _request(server: SparkLanguageServer, snap: DocumentSnapshot, data: dict[str, Any]) -> ActionRequest:
    action = _action_for(server, data)
    start, end = locate(snap, data)
    if action.applies_to == "file" and not syntax_errors(snap.source):
        raise ActionRefused("there are no syntax errors to fix")
    return ActionRequest(
        action=action,
        path=snap.path,
        snapshot=snap.source,
        start_line=start,
        end_line=end,
        diagnostic_message=data.get("message"),
        instruction=data.get("instruction"),
        others=server.documents.others(snap.uri),
    )


async def compute_edit(
    server: SparkLanguageServer, data: dict[str, Any], *, on_delta: Callable[[str], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> types.WorkspaceEdit | None:
    """The version-checked edit for ``data``, or None when the model proposes no change.

    Raises ActionRefused, PatchRefused or ModelError; never returns part of an edit.
    """
    session = await server.ready_session()
    uri = data["uri"]
    snap = server.documents.snapshot(uri)
    req = _request(server, snap, data)
    started = time.perf_counter()
    if req.action.applies_to == "file":
        result = await run_action(req, session, server.settings_for(uri), on_delta=on_delta)
        final = server.documents.snapshot(uri)
        if final.version != snap.version:
            raise ActionRefused("the document changed while fixing; run the fix again")
    else:
        prepared = prepare(req, session.model, session.edit_format, server.settings_for(uri))
        server.last_prompt = (req.action.id, session.model, prepared.request)  # "Show prompt"
        reply = await session.complete(prepared.request, on_delta=on_delta)
        final = server.documents.snapshot(uri)
        if final.version == snap.version:
            result = finish(prepared, reply, snap.source)
        else:
            result = _finish_on_newer_text(server, prepared, reply, req, snap, final, data, session)
        result = await review(dataclasses.replace(req, snapshot=final.source), prepared, result, session,
                              server.settings)  # issue #12: cosmetic "fixes", second look
    server.last_latency_ms = round((time.perf_counter() - started) * 1000, 1)
    server.send_status("ready")
    if not result.changed:
        return None
    try:  # verify_command (issue #12): test the fix on a private copy before offering it
        outcome = await verify_fix(server.settings_for(uri), req.action, final.path, result.old_text, result.new_text,
                                   on_status=on_status)
    except VerificationRefused as exc:
        raise ActionRefused(str(exc)) from None
    edit = text_document_edit(uri, final.version, final.index(), result.edits, server.encoding)
    remember(edit, outcome)
    return edit


def _finish_on_newer_text(
    server: SparkLanguageServer,
    prepared: Any,
    reply: Any,
    req: ActionRequest,
    snap: DocumentSnapshot,
    final: DocumentSnapshot,
    data: dict[str, Any],
    session: Any,
) -> ActionResult:
    """The user typed while the model worked: place the reply on the current text, or refuse."""
    moved = dict(data, version=snap.version, start_line=req.start_line, end_line=req.end_line)
    if data.get("scope") is not None:
        moved["scope_start"] = prepared.target.start_line if prepared.target else data.get("scope_start")
    start, end = locate(final, moved)
    newer = dataclasses.replace(req, snapshot=final.source, start_line=start, end_line=end)
    again = prepare(newer, session.model, session.edit_format, server.settings_for(final.uri))
    if prepared.mode == "scope":
        # A rewritten scope would overwrite whatever the user just typed inside it.
        old_scope = snap.source.lines[prepared.scope[0] : prepared.scope[1] + 1]
        new_scope = final.source.lines[again.scope[0] : again.scope[1] + 1]
        if old_scope != new_scope:
            raise ActionRefused("the code changed while the model was working; run the action again")
    return finish(again, reply, final.source)


def failure_message(exc: BaseException) -> str:
    if isinstance(exc, PatchRefused):
        return f"refused the model's edit: {exc.reason}"
    if isinstance(exc, ModelError):
        return exc.message
    if isinstance(exc, (ActionRefused, DocumentNotOpen)):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


def as_request_error(server: SparkLanguageServer, exc: BaseException) -> JsonRpcException:
    """Tell the user why (showMessage) and fail the request so the client applies nothing."""
    message = failure_message(exc)
    log.warning("action failed: %s", message)
    server.notify_user("warning" if isinstance(exc, (PatchRefused, ActionRefused)) else "error", message)
    if isinstance(exc, ModelError):
        server.send_status("error")
    return JsonRpcException(message=message, code=REQUEST_FAILED)


class Progress:
    """$/progress for one action: begin -> tokens received -> end; cancelling it cancels the task."""

    def __init__(self, server: SparkLanguageServer, title: str) -> None:
        self.server = server
        self.title = title
        self.token: str | None = None
        self.chars = 0
        self._last_report = 0.0

    async def __aenter__(self) -> "Progress":
        if not self.server.supports_progress():
            return self
        token = f"spark-ls/{uuid.uuid4().hex}"
        try:
            await asyncio.wait_for(self.server.work_done_progress.create_async(token), timeout=5)
        except Exception:  # noqa: BLE001 - progress is a nicety; never fail the action for it
            return self
        self.token = token
        self.server.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title=f"spark-ls: {self.title}", cancellable=True, message="asking the model")
        )
        task = asyncio.current_task()
        cancelled = self.server.work_done_progress.tokens.get(token)
        if cancelled is not None and task is not None:
            cancelled.add_done_callback(lambda f: task.cancel() if f.cancelled() else None)
        return self

    def on_delta(self, delta: str) -> None:
        self.chars += len(delta)
        now = time.monotonic()
        if self.token is not None and now - self._last_report > 0.2:
            self._last_report = now
            self.server.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=f"~{self.chars // 4} tokens received")
            )

    def status(self, message: str) -> None:
        if self.token is not None:
            self.server.work_done_progress.report(self.token, types.WorkDoneProgressReport(message=message))

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.token is None:
            return
        outcome = "done" if exc_type is None else ("cancelled" if exc_type is asyncio.CancelledError else "failed")
        self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=outcome))
        self.server.work_done_progress.tokens.pop(self.token, None)


async def run_with_progress(
    server: SparkLanguageServer, data: dict[str, Any], title: str
) -> types.WorkspaceEdit | None:
    """compute_edit with progress, prefetch reuse and user-facing errors."""
    server.actions_in_flight += 1
    server.send_status("working", action=title)  # the status bar names the action while it runs
    try:
        async with Progress(server, title) as progress:
            prefetched = server.prefetcher.take(data)
            if prefetched is not None:
                return await asyncio.shield(prefetched)
            return await compute_edit(server, data, on_delta=progress.on_delta, on_status=progress.status)
    except asyncio.CancelledError:
        log.info("action cancelled: %s", title)
        raise
    except (PatchRefused, ModelError, ActionRefused, DocumentNotOpen) as exc:
        raise as_request_error(server, exc) from None
    finally:
        server.actions_in_flight -= 1
        if server.actions_in_flight == 0 and server.last_status == "working":
            server.send_status("ready")  # a refusal or cancellation ends the action too


class Prefetcher:
    """Speculative prefetch: start the preferred quick fix while the user reads the menu.

    At most one per document; invalidated by the next change; a resolve for the same action on
    the same version reuses it.
    """

    def __init__(self, server: SparkLanguageServer) -> None:
        self.server = server
        self._tasks: dict[str, tuple[str, asyncio.Task[types.WorkspaceEdit | None]]] = {}
        self.started = 0
        self.hits = 0

    @staticmethod
    def _key(data: dict[str, Any]) -> str:
        return repr(sorted(data.items()))

    def start(self, data: dict[str, Any]) -> None:
        uri = data["uri"]
        key = self._key(data)
        current = self._tasks.get(uri)
        if current is not None and current[0] == key:
            return
        self.invalidate(uri)
        task = asyncio.get_running_loop().create_task(compute_edit(self.server, data))
        task.add_done_callback(_swallow)  # a failed prefetch is simply not used
        self._tasks[uri] = (key, task)
        self.started += 1

    def take(self, data: dict[str, Any]) -> asyncio.Task[types.WorkspaceEdit | None] | None:
        entry = self._tasks.get(data["uri"])
        if entry is None or entry[0] != self._key(data):
            return None
        task = entry[1]
        if task.done() and (task.cancelled() or task.exception() is not None):
            self._tasks.pop(data["uri"], None)
            return None  # recompute, so the user sees a fresh error rather than a stale one
        self._tasks.pop(data["uri"], None)
        self.hits += 1
        return task

    def invalidate(self, uri: str) -> None:
        entry = self._tasks.pop(uri, None)
        if entry is not None and not entry[1].done():
            entry[1].cancel()

    def cancel_all(self) -> None:
        for uri in list(self._tasks):
            self.invalidate(uri)


def _swallow(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
