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
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from spark_ls.actions.catalog import INSTRUCTION_ACTION_ID, ActionSpec, find_action
from spark_ls.actions.run import (
    ActionRequest,
    ActionResult,
    PreparedAction,
    finish,
    prepare,
    review,
    run_action,
)
from spark_ls.context import Scope, all_scopes, syntax_errors
from spark_ls.context.document import Snapshot
from spark_ls.context.index import scopes_near
from spark_ls.context.scopes import SCOPE_KINDS
from spark_ls.diffs import PatchRefused
from spark_ls.model.types import ModelError, ModelReply
from spark_ls.server.convert import text_document_edit
from spark_ls.server.documents import (
    DocumentNotOpen,
    DocumentSnapshot,
    oversized_message,
)
from spark_ls.server.features import Feature
from spark_ls.server.pygls_compat import REQUEST_FAILED
from spark_ls.server.verification import VerificationRefused, remember, verify_fix

if TYPE_CHECKING:
    from spark_ls.model.session import ModelSession
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server")

INSTRUCTION_ACTION = ActionSpec(
    id=INSTRUCTION_ACTION_ID,
    title="Edit with instruction",
    kind="refactor.rewrite",
    instruction="{instruction}",
    applies_to="selection",
    allow_imports=True,
)


class ActionRefused(Exception):
    """The action cannot run or its result cannot be applied; the message says why."""


ActionData = dict[str, Any]  # what a listed CodeAction carries (JSON): see action_data()

_DATA_TYPES = {"uri": str, "version": int, "action": str, "start_line": int, "end_line": int}


def check_action_data(data: object, where: str) -> ActionData:
    """The action data a client sent back, if it is spark-ls's; InvalidParams otherwise."""
    if (
        isinstance(data, dict)
        and all(isinstance(data.get(k), kind) and not isinstance(data.get(k), bool) for k, kind in _DATA_TYPES.items())
        and 0 <= data["start_line"] <= data["end_line"]
    ):
        return data
    raise JsonRpcInvalidParams(f"{where}: not spark-ls action data; list the code actions again")


def refuse_if_oversized(server: SparkLanguageServer, uri: str) -> None:
    doc = server.documents.get(uri)
    if doc is not None and doc.oversized:
        raise as_request_error(server, ActionRefused(oversized_message(doc)))


def action_data(
    snapshot: DocumentSnapshot,
    action: ActionSpec,
    start_line: int,
    end_line: int,
    *,
    message: str | None = None,
    scope: Scope | None = None,
    instruction: str | None = None,
) -> ActionData:
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


def locate(snapshot: DocumentSnapshot, data: ActionData) -> tuple[int, int]:
    """The action's line range on ``snapshot``, following its scope if the text moved on."""
    start, end = int(data["start_line"]), int(data["end_line"])
    line_count = max(1, len(snapshot.source.lines))
    if data.get("version") == snapshot.version:
        return min(start, line_count - 1), min(end, line_count - 1)
    name = data.get("scope")
    if name:
        scope_start = data.get("scope_start")
        old_start = int(scope_start) if scope_start is not None else start
        best = _scope_named(snapshot.source, str(name), data.get("scope_kind"), old_start)
        if best is None:
            raise ActionRefused(f"`{name}` is no longer in the document; list the actions again")
        shift = best.start_line - old_start
        return max(0, start + shift), min(line_count - 1, end + shift)
    if end >= line_count:
        raise ActionRefused("the document changed and the action's lines no longer exist; list the actions again")
    return start, end


_NEAR_LINES = 200  # how far around its old start a moved scope is looked for before the whole file


def _scope_named(source: Snapshot, name: str, kind: object, near: int) -> Scope | None:
    """The scope ``name`` of ``kind`` starting nearest line ``near`` (the first in document order on
    a tie). Only the scopes around ``near`` are built unless none of them is a match: any scope
    nearer than the one found there starts inside the window too."""

    def nearest(scopes: Iterable[Scope]) -> Scope | None:
        found = [s for s in scopes if s.name == name and s.kind == kind and s.kind in SCOPE_KINDS]
        return min(found, key=lambda s: abs(s.start_line - near)) if found else None

    window = (max(0, near - _NEAR_LINES), near + _NEAR_LINES)
    best = nearest(node.scope for node in scopes_near(source, *window))
    if best is not None and abs(best.start_line - near) <= _NEAR_LINES:
        return best
    return nearest(all_scopes(source))


def _action_for(server: SparkLanguageServer, data: ActionData) -> ActionSpec:
    if data.get("action") == INSTRUCTION_ACTION.id:
        return INSTRUCTION_ACTION
    action = find_action(server.catalog_for(str(data.get("uri"))), str(data.get("action")))
    if action is None:
        raise ActionRefused(f"unknown action {data.get('action')!r}")
    return action


def _request(server: SparkLanguageServer, snap: DocumentSnapshot, data: ActionData) -> ActionRequest:
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
    server: SparkLanguageServer,
    data: ActionData,
    *,
    on_delta: Callable[[str], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> types.WorkspaceEdit | None:
    """The version-checked edit for ``data``, or None when the model proposes no change.

    Raises ActionRefused, PatchRefused or ModelError; never returns part of an edit.
    """
    session = await server.ready_session()
    uri = data["uri"]
    snap = server.documents.snapshot(uri)
    settings = snap.settings
    req = _request(server, snap, data)
    started = time.perf_counter()
    if req.action.applies_to == "file":
        result = await run_action(req, session, settings, on_delta=on_delta)
        final = server.documents.snapshot(uri)
        if final.version != snap.version:
            raise ActionRefused("the document changed while fixing; run the fix again")
    else:
        prepared = prepare(req, session.model, session.edit_format, settings)
        server.last_prompt = (req.action.id, session.model, prepared.request)  # "Show prompt"
        reply = await session.complete(prepared.request, on_delta=on_delta)
        final = server.documents.snapshot(uri)
        if final.version == snap.version:
            result = finish(prepared, reply, snap.source)
        else:
            result = _finish_on_newer_text(server, prepared, reply, req, snap, final, data, session)
        # issue #12: cosmetic "fixes", second look
        result = await review(dataclasses.replace(req, snapshot=final.source), prepared, result, session, final.settings)
    server.last_latency_ms = round((time.perf_counter() - started) * 1000, 1)
    server.send_status("ready")
    if not result.changed:
        return None
    try:  # verify_command (issue #12): test the fix on a private copy before offering it
        outcome = await verify_fix(
            final.settings, req.action, final.path, result.old_text, result.new_text, on_status=on_status
        )
    except VerificationRefused as exc:
        raise ActionRefused(str(exc)) from None
    edit = text_document_edit(uri, final.version, final.index(), result.edits, final.encoding)
    remember(edit, outcome)
    return edit


def _finish_on_newer_text(
    server: SparkLanguageServer,
    prepared: PreparedAction,
    reply: ModelReply,
    req: ActionRequest,
    snap: DocumentSnapshot,
    final: DocumentSnapshot,
    data: ActionData,
    session: ModelSession,
) -> ActionResult:
    """The user typed while the model worked: place the reply on the current text, or refuse."""
    moved = dict(data, version=snap.version, start_line=req.start_line, end_line=req.end_line)
    if data.get("scope") is not None:
        moved["scope_start"] = prepared.target.start_line if prepared.target else data.get("scope_start")
    start, end = locate(final, moved)
    newer = dataclasses.replace(req, snapshot=final.source, start_line=start, end_line=end)
    again = prepare(newer, session.model, session.edit_format, final.settings)
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
    """$/progress for one action: begin -> tokens received -> end; cancelling it cancels the task.

    The client is asked to create the token (``window/workDoneProgress/create``) without waiting
    for its answer: the action runs meanwhile, and ``begin`` goes out when the answer arrives
    (the round trip to the editor is no longer part of every action's latency). An action done
    before the answer still reports begin and end once the token exists, so the editor never
    keeps a token nobody ends; the action's own response waits for that (a bounded wait), so
    the editor sees begin -> end before the result, as before.
    """

    CREATE_TIMEOUT = 5.0

    def __init__(self, server: SparkLanguageServer, title: str) -> None:
        self.server = server
        self.title = title
        self.token: str | None = None  # set once the client created it and begin went out
        self.chars = 0
        self._last_report = 0.0
        self._task: asyncio.Task[Any] | None = None
        self._creating: asyncio.Task[Any] | None = None
        self._started = 0.0
        self._outcome: str | None = None  # set when the action is over
        self._message = "asking the model"  # the latest status, shown by begin if it comes later

    async def __aenter__(self) -> Self:
        if not self.server.client.work_done_progress:
            return self
        token = f"spark-ls/{uuid.uuid4().hex}"
        self._task = asyncio.current_task()
        self._started = time.monotonic()
        try:
            creating = asyncio.ensure_future(self.server.work_done_progress.create_async(token))
        except Exception:  # noqa: BLE001 - progress is a nicety; never fail the action for it
            return self
        self._creating = creating
        creating.add_done_callback(lambda done: self._created(token, done))
        return self

    def _created(self, token: str, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            return  # no progress for this action
        progress = self.server.work_done_progress
        progress.begin(
            token, types.WorkDoneProgressBegin(title=f"spark-ls: {self.title}", cancellable=True, message=self._message)
        )
        if self._outcome is not None:  # the action was faster than the editor's answer
            self._end(token, self._outcome)
            return
        self.token = token
        task = self._task
        cancelled = progress.tokens.get(token)
        if cancelled is not None and task is not None:
            cancelled.add_done_callback(lambda f: task.cancel() if f.cancelled() else None)

    def _end(self, token: str, outcome: str) -> None:
        self.server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome))
        self.server.work_done_progress.tokens.pop(token, None)

    def on_delta(self, delta: str) -> None:
        self.chars += len(delta)
        now = time.monotonic()
        if self.token is not None and now - self._last_report > 0.2:
            self._last_report = now
            self.server.work_done_progress.report(
                self.token, types.WorkDoneProgressReport(message=f"~{self.chars // 4} tokens received")
            )

    def status(self, message: str) -> None:
        self._message = message
        if self.token is not None:
            self.server.work_done_progress.report(self.token, types.WorkDoneProgressReport(message=message))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        outcome = "done" if exc_type is None else ("cancelled" if exc_type is asyncio.CancelledError else "failed")
        self._outcome = outcome
        if self.token is not None:
            self._end(self.token, outcome)
            self.token = None
            return
        creating = self._creating
        if creating is None or creating.done() or exc_type is asyncio.CancelledError:
            return  # (a late answer still gets begin -> end from _created)
        remaining = self.CREATE_TIMEOUT - (time.monotonic() - self._started)
        try:  # the editor sees begin -> end before the action's result
            await asyncio.wait_for(asyncio.shield(creating), max(0.0, remaining))
        except Exception as error:  # noqa: BLE001 - a slow or failing editor: the result goes out anyway
            log.debug("no answer to window/workDoneProgress/create: %s", type(error).__name__)


async def run_with_progress(
    server: SparkLanguageServer, data: ActionData, title: str
) -> types.WorkspaceEdit | None:
    """compute_edit with progress, prefetch reuse and user-facing errors."""
    server.actions_in_flight += 1
    server.send_status("working", action=title)  # the status bar names the action while it runs
    try:
        async with Progress(server, title) as progress:
            prefetcher = server.features.find(Prefetcher)
            prefetched = prefetcher.take(data) if prefetcher is not None else None
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


class Prefetcher(Feature):
    """Speculative prefetch: start the preferred quick fix while the user reads the menu.

    At most one per document; invalidated by the next change; a resolve for the same action on
    the same version reuses it.
    """

    def document_changed(self, uri: str) -> None:
        self.invalidate(uri)

    def document_closed(self, uri: str) -> None:
        self.invalidate(uri)

    def shutdown(self) -> None:
        self.cancel_all()

    def __init__(self, server: SparkLanguageServer) -> None:
        self.server = server
        self._tasks: dict[str, tuple[str, asyncio.Task[types.WorkspaceEdit | None]]] = {}
        self.started = 0
        self.hits = 0

    @staticmethod
    def _key(data: ActionData) -> str:
        return repr(sorted(data.items()))

    def start(self, data: ActionData) -> None:
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

    def take(self, data: ActionData) -> asyncio.Task[types.WorkspaceEdit | None] | None:
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
