"""The lean codeAction path (server/transport.py + server/code_action.py) answers exactly what
pygls's full path answers, and its kept answers (keyed on the request's bytes without the id)
never outlive what they depend on: the document's text and version, the settings, the session's
problem. Driven in process through the transport's Dispatcher (bytes in, bytes out) and, for the
wire, over stdio against a `spark-ls serve` subprocess."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import TEST_API_KEY
from lsprotocol import types
from raw_lsp import RawServer, frame

from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.code_action import CodeActions
from spark_ls.server.main import create_server
from spark_ls.server.transport import Answers, RawResult

URI = "file:///tmp/lean_path/shop.py"
SOURCE = '''\
import os


class Cart:
    """A cart."""

    items: list[int]

    def total(self):
        s = 0
        for x in self.items:
            s += x
        return s


def load(path):
    data = open(path).read()
    return [int(x) for x in data.split(",") if x]


value = load(os.environ["CART"])
'''


class Capture:
    """A pygls writer keeping what the server sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass

    def messages(self) -> list[dict[str, Any]]:
        out = []
        for data in self.sent:
            body = data[data.index(b"\r\n\r\n") + 4 :] if data.startswith(b"Content-Length") else data
            out.append(json.loads(body))
        return out


class InProcess:
    def __init__(self, server: SparkLanguageServer, capture: Capture) -> None:
        self.server, self.capture = server, capture
        feature = server.dispatcher.lean[types.TEXT_DOCUMENT_CODE_ACTION].__self__  # type: ignore[attr-defined]
        assert isinstance(feature, CodeActions)
        self.feature = feature
        self.listed = 0
        listing = feature.lister.list

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.listed += 1
            return listing(*args, **kwargs)

        feature.lister.list = counting  # type: ignore[method-assign]

    def send(self, message: dict[str, Any], *, raw: bytes | None = None) -> None:
        self.server.dispatcher.handle(raw if raw is not None else json.dumps(message, separators=(",", ":")).encode())

    def request(self, msg_id: Any, method: str, params: Any, *, raw: bytes | None = None) -> dict[str, Any]:
        self.capture.sent.clear()
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}, raw=raw)
        responses = [m for m in self.capture.messages() if "method" not in m]
        assert len(responses) == 1, self.capture.messages()
        return responses[0]

    def typed(self, params: dict[str, Any]) -> Any:
        """pygls's full path for the same params: structured, listed, unstructured."""
        converter = self.server.protocol.converter
        actions = self.feature.typed(converter.structure(params, types.CodeActionParams))
        return None if actions is None else [converter.unstructure(a) for a in actions]


@pytest.fixture
async def lean(model_endpoint: Any, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[InProcess]:
    monkeypatch.setenv("OPENAI_BASE_URL", model_endpoint.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    server = create_server()
    capture = Capture()
    server.protocol.set_writer(capture)
    harness = InProcess(server, capture)
    capabilities = {
        "general": {"positionEncodings": ["utf-16"]},
        "textDocument": {"codeAction": {
            "dataSupport": True, "isPreferredSupport": True, "disabledSupport": True,
            "resolveSupport": {"properties": ["edit"]},
            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix", "refactor", "source"]}},
        }},
    }
    harness.send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                  "params": {"processId": None, "rootUri": "file:///tmp/lean_path", "capabilities": capabilities}})
    harness.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    harness.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": SOURCE}}})
    try:
        yield harness
    finally:
        await server.close()


def _pos(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


def _params(start: tuple[int, int], end: tuple[int, int] | None = None, *, diagnostics: list[Any] = (),  # type: ignore[assignment]
            trigger: int | None = None, only: list[str] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"diagnostics": list(diagnostics)}
    if trigger is not None:
        context["triggerKind"] = trigger
    if only is not None:
        context["only"] = only
    return {"textDocument": {"uri": URI}, "range": {"start": _pos(*start), "end": _pos(*(end or start))}, "context": context}


DIAGNOSTIC = {"range": {"start": _pos(11, 12), "end": _pos(11, 13)}, "severity": 1, "code": "E1",
              "source": "Ruff", "message": "something is off\nsecond line"}
CASES = [
    _params((10, 8)),                                                   # inside a method
    _params((0, 0)),                                                    # module level
    _params((17, 4), (18, 10)),                                         # a selection
    _params((11, 12), diagnostics=[DIAGNOSTIC], trigger=1),             # a diagnostic under the cursor
    _params((11, 2), diagnostics=[DIAGNOSTIC], trigger=2),              # automatic: the most relevant few
    _params((11, 12), diagnostics=[DIAGNOSTIC], only=["quickfix"]),     # filtered by kind
    _params((11, 12), diagnostics=[DIAGNOSTIC], only=["source"]),       # nothing of that kind
]


async def test_lean_answers_equal_the_full_path_and_repeats_are_kept(lean: InProcess) -> None:
    for n, params in enumerate(CASES):
        expected = lean.typed(params)
        listed = lean.listed
        first = lean.request(100 + n, "textDocument/codeAction", params)
        assert first == {"jsonrpc": "2.0", "id": 100 + n, "result": expected}, params
        assert lean.listed == listed + 1
        # Again with other ids (integer and string): the kept answer, not a new listing.
        for msg_id in (200 + n, f"req-{n}", 0, -3):
            assert lean.request(msg_id, "textDocument/codeAction", params) == {"jsonrpc": "2.0", "id": msg_id, "result": expected}
        assert lean.listed == listed + 1, "a repeated request was listed again"
    assert len(lean.server.dispatcher.answers) == len(CASES)
    # The answer really came from the kept bytes: the same request in another key order or
    # spacing is a different key (parsed, then served from the per-version index).
    params = CASES[0]
    spaced = json.dumps({"params": params, "method": "textDocument/codeAction", "id": 7, "jsonrpc": "2.0"}).encode()
    assert lean.request(7, "textDocument/codeAction", None, raw=spaced)["result"] == lean.typed(params)


async def test_kept_answers_follow_the_document_settings_and_problem(lean: InProcess) -> None:
    params = _params((10, 8))
    before = lean.request(1, "textDocument/codeAction", params)["result"]
    assert {a["data"]["version"] for a in before} == {1}
    # A keystroke: a new version, so a new answer (with the new version in each action's data).
    lean.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"range": {"start": _pos(10, 13), "end": _pos(10, 13)}, "text": "0"}]}})
    after = lean.request(2, "textDocument/codeAction", params)["result"]
    assert {a["data"]["version"] for a in after} == {2} and after == lean.typed(params)
    # A change that repeats the version number (a misbehaving client) still invalidates.
    lean.send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": URI, "version": 2},
        "contentChanges": [{"text": SOURCE.replace("def total(self):", "def grand_total(self):")}]}})
    renamed = lean.request(3, "textDocument/codeAction", params)["result"]
    assert any("grand_total" in a["title"] for a in renamed) and renamed == lean.typed(params)
    # The session's problem: the actions are shown disabled with the reason.
    lean.server.session_problem = "no key"
    disabled = lean.request(4, "textDocument/codeAction", params)["result"]
    assert disabled and all(a["disabled"]["reason"] == "spark-ls: no key" for a in disabled)
    lean.server.session_problem = None
    assert lean.request(5, "textDocument/codeAction", params)["result"] == renamed
    # A configuration change that removes the user's actions (new Settings and catalog objects).
    lean.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
               "params": {"settings": {"spark-ls": {"actions": [
                   {"id": "shout", "title": "Shout {name}", "kind": "refactor.rewrite", "instruction": "Uppercase."}]}}}})
    configured = lean.request(6, "textDocument/codeAction", params)["result"]
    assert "Shout grand_total" in [a["title"] for a in configured] and configured == lean.typed(params)
    # Closed, then reopened at version 1 again: nothing kept from before the close is reused.
    lean.send({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": URI}}})
    assert lean.request(8, "textDocument/codeAction", params)["result"] is None
    lean.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": SOURCE.replace("total", "sum_up")}}})
    reopened = lean.request(9, "textDocument/codeAction", params)["result"]
    assert any("sum_up" in a["title"] for a in reopened) and reopened == lean.typed(params)


async def test_kept_answers_after_shutdown_are_not_served(lean: InProcess) -> None:
    params = _params((10, 8))
    lean.request(1, "textDocument/codeAction", params)
    lean.send({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None})
    await asyncio.sleep(0.05)
    lean.capture.sent.clear()
    lean.send({"jsonrpc": "2.0", "id": 3, "method": "textDocument/codeAction", "params": params})
    # pygls's rule after shutdown (it logs "No more requests"): no kept answer goes out instead.
    assert not [m for m in lean.capture.messages() if m.get("result")]


def _body(msg_id: Any, params: Any, *, first: str = "jsonrpc") -> bytes:
    message = {"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/codeAction", "params": params}
    if first == "params":
        message = {"params": params, "method": "textDocument/codeAction", "jsonrpc": "2.0", "id": msg_id}
    return json.dumps(message, separators=(",", ":")).encode()


def test_answers_are_keyed_on_the_top_level_id_only() -> None:
    answers = Answers()
    always = lambda: True
    assert answers.keep(_body(5, {"a": 1}), 5, b"[1]", always)
    assert answers.answer(_body(6, {"a": 1})) == b'{"jsonrpc":"2.0","id":6,"result":[1]}'
    assert answers.answer(_body("x-1", {"a": 1})) == b'{"jsonrpc":"2.0","id":"x-1","result":[1]}'
    assert answers.answer(_body(6, {"a": 2})) is None  # other params
    # An "id" inside the params before the message's own id (params first): the first "id" in
    # the bytes is not the message's, so nothing is kept under it, even when the values coincide.
    trap = _body(5, {"id": 5, "b": 1}, first="params")
    assert not answers.keep(trap, 5, b"[2]", always)
    assert answers.answer(_body(5, {"id": 7, "b": 1}, first="params")) is None
    # The message's id last (after the params): kept, and the params' own "id" stays in the key.
    late = _body(9, {"b": 2}, first="params")
    assert answers.keep(late, 9, b"[3]", always)
    assert answers.answer(_body(10, {"b": 2}, first="params")) == b'{"jsonrpc":"2.0","id":10,"result":[3]}'
    # A duplicated id member (JSON takes the last one): not keyable.
    assert not answers.keep(b'{"jsonrpc":"2.0","id":1,"method":"m","params":{},"id":2}', 2, b"[]", always)
    assert not answers.keep(b'{"jsonrpc":"2.0","id":1,"method":"m","params":{},"id":2}', 1, b"[]", always)
    # Ids that are not plain integers or plain strings are never used as a split.
    for token, msg_id in ((b"1.5", 1.5), (b"01", 1), (b'"a\\"b"', 'a"b'), (b"true", True), (b"null", None)):
        body = b'{"jsonrpc":"2.0","id":' + token + b',"method":"m","params":{}}'
        assert not answers.keep(body, msg_id, b"[]", always), token  # type: ignore[arg-type]
    # A large message (a whole-text didChange) is never searched for an id, nor kept.
    big = _body(1, {"text": "x" * Answers.MAX_REQUEST_BYTES})
    assert answers.split(big) is None and not answers.keep(big, 1, b"[]", always)
    # Whitespace around the id is part of the key; the id token is echoed as sent.
    assert answers.keep(b'{"jsonrpc": "2.0", "id": 3 , "method": "m"}', 3, b"null", always)
    assert answers.answer(b'{"jsonrpc": "2.0", "id": 44 , "method": "m"}') == b'{"jsonrpc":"2.0","id":44,"result":null}'


def test_an_answer_is_dropped_once_its_replay_says_so() -> None:
    answers = Answers()
    valid = [True]
    calls = []

    def replay() -> bool:
        calls.append(1)
        return valid[0]

    assert answers.keep(_body(1, {}), 1, RawResult(b"[]"), replay)
    assert answers.answer(_body(2, {})) is not None and len(calls) == 1
    valid[0] = False
    assert answers.answer(_body(3, {})) is None and len(answers) == 0
    valid[0] = True
    assert answers.answer(_body(4, {})) is None and len(calls) == 2  # gone: not asked again


async def test_repeated_code_actions_over_stdio(model_endpoint: Any, tmp_path: Any) -> None:
    """On the wire: the same request with new ids gets the same actions under each id; after a
    change, the new version's. Ids as an editor sends them: integers and strings, id first or last."""
    server = await RawServer.start(model_endpoint)
    try:
        uri = (tmp_path / "shop.py").as_uri()
        await server.initialize_and_open(tmp_path, uri, SOURCE)
        params = dict(_params((10, 8)), textDocument={"uri": uri})
        results = []
        for msg_id, first in ((1, "jsonrpc"), (2, "jsonrpc"), ("three", "jsonrpc"), (4, "params"), (5, "params")):
            await server.send(frame(raw=_body(msg_id, params, first=first)))
            response = await server.response(msg_id)
            assert response["id"] == msg_id
            results.append(response["result"])
        assert results[0] and all(r == results[0] for r in results)
        assert {a["data"]["version"] for a in results[0]} == {1}
        await server.send(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": _pos(10, 13), "end": _pos(10, 13)}, "text": "0"}]}}))
        await server.send(frame(raw=_body(6, params)))
        changed = (await server.response(6))["result"]
        assert {a["data"]["version"] for a in changed} == {2}
        assert [a["title"] for a in changed] == [a["title"] for a in results[0]]
    finally:
        await server.close()


async def test_kept_answers_do_not_keep_a_closed_document_alive(lean: InProcess) -> None:
    import gc
    import weakref

    doc = lean.server.documents.get(URI)
    assert doc is not None
    ref = weakref.ref(doc)
    del doc
    for n, params in enumerate(CASES):
        lean.request(n, "textDocument/codeAction", params)
        lean.request(100 + n, "textDocument/codeAction", params)
    assert len(lean.server.dispatcher.answers) == len(CASES)
    lean.send({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": URI}}})
    gc.collect()
    assert ref() is None, gc.get_referrers(ref())
    assert lean.request(999, "textDocument/codeAction", CASES[0])["result"] is None
