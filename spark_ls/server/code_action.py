"""textDocument/codeAction: list actions instantly. No model call, no blocking work."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from lsprotocol import types

from spark_ls.actions.catalog import ActionSpec, kind_allowed
from spark_ls.actions.run import ActionRequest, describe_target
from spark_ls.config import Settings
from spark_ls.context import Scope, enclosing_scope, syntax_errors
from spark_ls.context.index import warm_if_incremental
from spark_ls.server.capabilities import ResolvedClientCapabilities
from spark_ls.server.convert import range_to_lines
from spark_ls.server.diagnostics import SOURCE as SPARK_SOURCE
from spark_ls.server.documents import DocumentSnapshot, OpenDocument
from spark_ls.server.engine import ActionData, Prefetcher, action_data
from spark_ls.server.transport import Fallback, RawResult

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server")

AUTOMATIC_LIMIT = 3  # lightbulb requests the editor makes on its own get only the most relevant
MAX_DIAGNOSTIC_FIXES = 8
OFFERED_KINDS = [
    types.CodeActionKind.QuickFix,
    types.CodeActionKind.RefactorRewrite,
    types.CodeActionKind.RefactorExtract,
    types.CodeActionKind.RefactorInline,
    "source.fixAll.spark",
]


def _contains(rng: types.Range, pos: types.Position) -> bool:
    return (rng.start.line, rng.start.character) <= (pos.line, pos.character) <= (rng.end.line, rng.end.character)


class ListingState(Protocol):
    """What listing reads from the server (a SparkLanguageServer, or any object in a unit test)."""

    def catalog_for(self, uri: str) -> Sequence[ActionSpec]: ...

    @property
    def client(self) -> ResolvedClientCapabilities: ...

    @property
    def problem(self) -> str | None: ...


class ActionLister:
    """Decides which catalog entries apply at a range. Plain logic, unit-testable."""

    def __init__(self, state: ListingState) -> None:
        self.state = state

    def make(
        self,
        snap: DocumentSnapshot,
        action: ActionSpec,
        start_line: int,
        end_line: int,
        *,
        message: str | None = None,
        diagnostic: types.Diagnostic | None = None,
        preferred: bool = False,
        scope: Scope | None = None,
    ) -> types.CodeAction | None:
        values = describe_target(
            ActionRequest(action, snap.path, snap.source, start_line, end_line, diagnostic_message=message), scope
        )
        title = action.format_title(**values)
        data = action_data(snap, action, start_line, end_line, message=message, scope=scope)
        code_action = types.CodeAction(
            title=title,
            kind=action.kind,
            diagnostics=[diagnostic] if diagnostic else None,
            is_preferred=preferred or None,
            data=data,
        )
        client = self.state.client
        if client.llm_tag:
            code_action.tags = [types.CodeActionTag.LlmGenerated]
        problem = self.state.problem
        if problem:
            if not client.code_action_disabled:
                return None
            code_action.disabled = types.CodeActionDisabled(reason=f"spark-ls: {problem}")
        elif not client.code_action_resolve:
            # Clients without resolve support run a command; the server then sends applyEdit.
            code_action.command = types.Command(title=title, command="spark.runAction", arguments=[data])
        return code_action

    def list(self, snap: DocumentSnapshot, params: types.CodeActionParams) -> list[types.CodeAction]:
        only = params.context.only
        language = snap.source.language.name if snap.source.language else None
        start_line, end_line = range_to_lines(params.range)
        cursor = params.range.start
        found: list[types.CodeAction | None] = []
        catalog = [a for a in self.state.catalog_for(snap.uri) if a.supports(language) and kind_allowed(a.kind, only)]

        # 1. One quick fix per diagnostic the client passed (any server's), preferred under the cursor.
        for action in (a for a in catalog if a.applies_to == "diagnostic"):
            # The client already chose the diagnostics relevant to the request (VS Code: those
            # overlapping the range; Neovim: those on the cursor line), so trust its choice.
            for diagnostic in params.context.diagnostics[:MAX_DIAGNOSTIC_FIXES]:
                d_start, d_end = range_to_lines(diagnostic.range)
                found.append(
                    self.make(
                        snap, action, d_start, d_end, message=diagnostic.message.splitlines()[0][:200],
                        diagnostic=diagnostic, preferred=_contains(diagnostic.range, cursor),
                        scope=enclosing_scope(snap.source, d_start, d_end),
                    )
                )
        # 2. Scope actions at the cursor ("Fix bug in f", refactors). The scope is looked up once.
        scope = enclosing_scope(snap.source, start_line, end_line)
        if scope is not None:
            scope_text = snap.text[scope.start : scope.end]
            for action in (a for a in catalog if a.applies_to == "scope"):
                if scope.kind in action.scope_kinds and action.matches_text(scope_text):
                    found.append(self.make(snap, action, start_line, end_line, scope=scope))
        # 3. Selection actions (extract function) when something is selected.
        has_selection = params.range.start != params.range.end
        if has_selection:
            for action in (a for a in catalog if a.applies_to == "selection"):
                found.append(self.make(snap, action, start_line, end_line, scope=scope))
        # 4. File actions (source.fixAll.spark) when there is something to fix.
        file_actions = [a for a in catalog if a.applies_to == "file"]
        invoked = only or params.context.trigger_kind != types.CodeActionTriggerKind.Automatic
        if file_actions and invoked and syntax_errors(snap.source):
            found.extend(self.make(snap, a, 0, 0, scope=None) for a in file_actions)

        listed = [a for a in found if a is not None]
        if listed and not any(a.is_preferred for a in listed):
            # No diagnostic contains the cursor: prefer the first fix for one on the cursor's line.
            same_line = next((a for a in listed if a.diagnostics and a.diagnostics[0].range.start.line == cursor.line), None)
            if same_line is not None:
                same_line.is_preferred = True
        if params.context.trigger_kind == types.CodeActionTriggerKind.Automatic and not only:
            listed.sort(key=lambda a: (not a.is_preferred, a.kind != types.CodeActionKind.QuickFix))
            listed = listed[:AUTOMATIC_LIMIT]
        return listed


class _ListingInputs(NamedTuple):
    """Everything a listing depends on besides the request's params."""

    revision: int  # the document's text (counts its changes)
    version: int
    settings: Settings  # its folder's settings (a new object on any configuration change)
    encoding: str
    catalog: Sequence[ActionSpec]
    client: ResolvedClientCapabilities
    problem: str | None

    def same_as(self, other: _ListingInputs) -> bool:
        return (
            self.revision == other.revision and self.version == other.version and self.settings is other.settings
            and self.encoding == other.encoding and self.catalog is other.catalog and self.client is other.client
            and self.problem == other.problem
        )


class CodeActions:
    """textDocument/codeAction, with a per-version index of answers.

    An editor asks again and again for the same document version and range (cursor moves,
    lightbulb refreshes). The first request for a (version, range, context) is listed by
    :class:`ActionLister`; its JSON answer is kept, so repeating it costs a dict lookup. The
    transport's lean path (server/transport.py) serves these requests from plain JSON, without
    pygls's per-message structuring, and keeps each answer under the request's bytes (any id) for
    as long as :meth:`_state` of the document is unchanged: a repeated request is then answered
    without even parsing its JSON.
    """

    INDEX_SIZE = 256

    def __init__(self, server: SparkLanguageServer) -> None:
        self.server = server
        self.lister = ActionLister(server)
        # (uri, params) -> (the document, what the listing read, the serialised result, the action
        # data to prefetch or None); an entry holds while the document and the inputs are the same.
        # Kept answers refer to their document weakly: a closed document is not kept alive by them.
        self._index: dict[
            tuple[str, str], tuple[weakref.ref[OpenDocument], _ListingInputs, RawResult, ActionData | None]
        ] = {}

    def typed(self, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        """The full path (pygls): typed params in, typed actions out."""
        snap = self._snapshot(params.text_document.uri)
        if snap is None:
            return None
        actions = self.lister.list(snap, params)
        self._prefetch(snap.settings, prefetch_candidate(snap, params, actions))
        _analyse_soon(snap)
        return actions

    def _state(self, uri: str, doc: OpenDocument) -> _ListingInputs:
        server = self.server
        documents = server.documents
        return _ListingInputs(
            doc.revision, doc.version, documents.settings_of(uri), documents.encoding,
            server.catalog_for(uri), server.client, server.problem,
        )

    def lean(self, params: Any) -> RawResult:
        """The lean path: plain JSON params in, plain JSON result out (Fallback when unsure)."""
        try:
            uri = params["textDocument"]["uri"]
        except (TypeError, KeyError):
            raise Fallback from None
        if not isinstance(uri, str):
            raise Fallback
        server = self.server
        doc = server.documents.get(uri)
        if doc is None or doc.oversized:
            raise Fallback  # the full path checks the params and answers null
        state = self._state(uri, doc)
        key = (uri, json.dumps(params, sort_keys=True))
        entry = self._index.get(key)
        if entry is None or entry[0]() is not doc or not entry[1].same_as(state):
            snap = doc.snapshot()
            typed = server.protocol.converter.structure(params, types.CodeActionParams)  # raises on bad params
            actions = self.lister.list(snap, typed)
            result = json.dumps([server.protocol.converter.unstructure(a) for a in actions], separators=(",", ":"))
            entry = (weakref.ref(doc), state, RawResult(result.encode()), prefetch_candidate(snap, typed, actions))
            if len(self._index) >= self.INDEX_SIZE:
                self._index.clear()  # cheaper to rebuild than to track
            self._index[key] = entry
            _analyse_soon(snap)
        doc_ref, _, raw, data = entry
        self._prefetch(state.settings, data)

        def replay() -> bool:
            """Whether this answer still holds for the same request (and, if so, its prefetch again)."""
            current = server.documents.get(uri)
            if current is None or current is not doc_ref() or not self._state(uri, current).same_as(state):
                return False
            self._prefetch(state.settings, data)
            return True

        return RawResult(raw, replay)

    def _snapshot(self, uri: str) -> DocumentSnapshot | None:
        doc = self.server.documents.get(uri)
        if doc is None or doc.oversized:
            return None  # an oversized document was announced once (text_sync); no actions
        return doc.snapshot()

    def _prefetch(self, settings: Settings, data: ActionData | None) -> None:
        if data is None or not settings.prefetch or self.server.problem:
            return
        prefetcher = self.server.features.find(Prefetcher)
        if prefetcher is not None:
            prefetcher.start(data)


def _analyse_soon(snap: DocumentSnapshot) -> None:
    """Once this answer is out, bring the text's analysis up to date if that is cheap (one edit
    since the last analysed text): a resolve picked from this menu then finds its context ready."""
    try:
        asyncio.get_running_loop().call_soon(warm_if_incremental, snap.source)
    except RuntimeError:  # no event loop (a unit test calling the lister directly)
        pass


def register(server: SparkLanguageServer) -> None:
    feature = CodeActions(server)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=OFFERED_KINDS, resolve_provider=True),
    )
    def code_action(ls: SparkLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        return feature.typed(params)

    server.dispatcher.add_lean(types.TEXT_DOCUMENT_CODE_ACTION, feature.lean)


def prefetch_candidate(
    snap: DocumentSnapshot, params: types.CodeActionParams, actions: list[types.CodeAction]
) -> ActionData | None:
    """An automatic request with a diagnostic at the cursor: the data of its preferred fix."""
    if params.context.trigger_kind != types.CodeActionTriggerKind.Automatic:
        return None
    preferred = next(
        (a for a in actions if a.is_preferred and a.kind == types.CodeActionKind.QuickFix and a.diagnostics), None
    )
    if preferred is None or not preferred.diagnostics or not isinstance(preferred.data, dict):
        return None
    diagnostic = preferred.diagnostics[0]
    if diagnostic.source == SPARK_SOURCE:
        # Editors re-ask right after a fix is applied, still holding the old diagnostic: only
        # prefetch a syntax error the current text still has.
        lines = {p.start_line for p in syntax_errors(snap.source)}
        if diagnostic.range.start.line not in lines:
            return None
    return preferred.data
