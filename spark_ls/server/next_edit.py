"""spark/nextEdit: predict the next edit near the cursor (custom request).

Params: ``{"textDocument": {"uri"}, "position": Position}``. Result: ``null`` (no edit), or
``{"uri", "version", "edits": [TextEdit], "range": Range, "newText": str}``: ``edits`` are the
minimal edits (all inside the editable region; the engine refused anything else), ``range`` /
``newText`` the same change as one replacement, for rendering. The prediction is also kept so
that an inline-completion request on the same text gets it as an item when it edits the
cursor's line. Errors: RequestFailed with the reason (a refused reply, a model error).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from spark_ls.diffs import PatchRefused
from spark_ls.inline.context import build_context
from spark_ls.inline.next_edit import as_single_edit, build_request, place_reply
from spark_ls.model.types import ModelError
from spark_ls.server.convert import edits_to_text_edits, offset_at, position_at

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer
    from spark_ls.server.inline_completion import InlineCompletions

log = logging.getLogger("spark_ls.server.inline")

NEXT_EDIT = "spark/nextEdit"
REQUEST_FAILED = -32803


class _Failed(JsonRpcException):
    code = REQUEST_FAILED


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def parse_params(params: Any) -> tuple[str, types.Position]:
    uri = _get(params, "textDocument", "uri") or _get(params, "text_document", "uri")
    line = _get(params, "position", "line")
    character = _get(params, "position", "character")
    if not isinstance(uri, str) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (line, character)):
        raise JsonRpcInvalidParams(f"{NEXT_EDIT}: expected {{textDocument: {{uri}}, position: {{line, character}}}}")
    return uri, types.Position(line=line, character=character)


async def predict(ls: SparkLanguageServer, feature: InlineCompletions, params: Any) -> dict[str, Any] | None:
    uri, position = parse_params(params)
    reason = feature.disabled_reason(uri)
    if reason is not None:
        feature.tell_disabled(reason)
        return None
    snap = ls.documents.snapshot(uri)
    index = snap.index()
    offset = offset_at(index, position, ls.encoding)
    feature.history.observe(uri, snap.path, snap.text, offset, snap.source.line_starts())
    session = await ls.ready_session()
    header = build_context(snap.source, offset, path=snap.path, budget_tokens=512).header
    prompt = build_request(snap.source, offset, path=snap.path, recent=feature.history.edits(uri), header=header)
    try:
        reply = await session.complete(prompt.request)
        result = place_reply(snap.source, prompt.region, reply.text, path=snap.path)
    except PatchRefused as exc:
        log.info("next edit refused: %s", exc.reason)
        raise _Failed(f"next edit refused: {exc.reason}") from None
    except ModelError as exc:
        raise _Failed(exc.message) from None
    if result is None:
        feature.next_edits.pop(uri, None)
        return None
    one = as_single_edit(result.edits, snap.text)
    assert one is not None
    feature.next_edits[uri] = (snap.text, result.new_text)
    text_edits = edits_to_text_edits(index, result.edits, ls.encoding)
    return {
        "uri": uri,
        "version": snap.version,
        "edits": [ls.protocol._converter.unstructure(e) for e in text_edits],
        "range": ls.protocol._converter.unstructure(
            types.Range(start=position_at(index, one.start, ls.encoding), end=position_at(index, one.end, ls.encoding))
        ),
        "newText": one.new_text,
        "region": {"startLine": prompt.region[0], "endLine": prompt.region[1]},
    }


def register(server: SparkLanguageServer) -> None:
    @server.feature(NEXT_EDIT)
    async def next_edit(ls: SparkLanguageServer, params: Any) -> dict[str, Any] | None:
        return await predict(ls, ls.inline, params)  # type: ignore[attr-defined]
