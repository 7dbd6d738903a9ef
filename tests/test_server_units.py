"""Unit tests for the server's plain classes (no LSP round trip): ActionLister, the feature
registry, the Content-Length framer and the resolved client capabilities."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from lsprotocol import types

from spark_ls.actions.catalog import ActionSpec, load_catalog
from spark_ls.config import Settings
from spark_ls.server.capabilities import ResolvedClientCapabilities
from spark_ls.server.code_action import ActionLister
from spark_ls.server.documents import DocumentStore
from spark_ls.server.features import Feature, Features
from spark_ls.server.transport import Framer

SOURCE = "import os\n\n\ndef total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"
URI = "file:///tmp/units.py"


@dataclass
class State:
    """What ActionLister reads: any object with these attributes will do."""

    actions: list[ActionSpec]
    client: ResolvedClientCapabilities = field(default_factory=ResolvedClientCapabilities)
    problem: str | None = None

    def catalog_for(self, uri: str) -> list[ActionSpec]:
        return self.actions


def _params(line: int, *, diagnostics: list[types.Diagnostic] | None = None, automatic: bool = False) -> types.CodeActionParams:
    pos = types.Position(line=line, character=4)
    trigger = types.CodeActionTriggerKind.Automatic if automatic else types.CodeActionTriggerKind.Invoked
    return types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        range=types.Range(start=pos, end=pos),
        context=types.CodeActionContext(diagnostics=diagnostics or [], trigger_kind=trigger),
    )


def _snapshot():  # type: ignore[no-untyped-def]
    store = DocumentStore()
    store.open(URI, 3, "python", SOURCE)
    return store.snapshot(URI)


def test_lister_offers_scope_actions_inside_a_function_and_none_at_module_level() -> None:
    lister = ActionLister(State(load_catalog(Settings()), ResolvedClientCapabilities(code_action_resolve=True)))
    inside = lister.list(_snapshot(), _params(5))
    titles = [a.title for a in inside]
    assert "Fix bug in total" in titles, titles
    assert all(a.command is None and a.data["version"] == 3 for a in inside)  # resolve: no command
    assert not any("total" in a.title for a in lister.list(_snapshot(), _params(0)))


def test_lister_quick_fix_per_diagnostic_is_preferred_under_the_cursor() -> None:
    diagnostic = types.Diagnostic(
        range=types.Range(start=types.Position(line=5, character=0), end=types.Position(line=5, character=20)),
        message="x may be None", source="mypy",
    )
    lister = ActionLister(State(load_catalog(Settings()), ResolvedClientCapabilities(code_action_resolve=True)))
    actions = lister.list(_snapshot(), _params(5, diagnostics=[diagnostic], automatic=True))
    assert len(actions) <= 3  # automatic requests get only the most relevant
    assert actions[0].is_preferred and actions[0].diagnostics == [diagnostic]
    assert actions[0].kind == types.CodeActionKind.QuickFix


def test_lister_client_capabilities_and_problem() -> None:
    catalog = load_catalog(Settings())
    plain = ActionLister(State(catalog)).list(_snapshot(), _params(5))
    assert plain and all(a.command is not None and a.command.command == "spark.runAction" for a in plain)
    assert all(a.tags is None for a in plain)
    tagged = ActionLister(State(catalog, ResolvedClientCapabilities(llm_tag=True, code_action_resolve=True)))
    assert all(a.tags == [types.CodeActionTag.LlmGenerated] for a in tagged.list(_snapshot(), _params(5)))
    # A lasting problem: shown disabled where the client can show it, hidden elsewhere.
    disabled = ActionLister(State(catalog, ResolvedClientCapabilities(code_action_disabled=True), problem="bad key"))
    shown = disabled.list(_snapshot(), _params(5))
    assert shown and all(a.disabled is not None and "bad key" in a.disabled.reason for a in shown)
    assert ActionLister(State(catalog, problem="bad key")).list(_snapshot(), _params(5)) == []


def test_resolved_capabilities_read_once_from_the_client() -> None:
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            code_action=types.CodeActionClientCapabilities(
                resolve_support=types.ClientCodeActionResolveOptions(properties=["edit"]), disabled_support=True
            )
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
    )
    resolved = ResolvedClientCapabilities.resolve(caps, types.PositionEncodingKind.Utf8)
    assert resolved == ResolvedClientCapabilities(
        code_action_resolve=True, code_action_disabled=True, llm_tag=False, work_done_progress=True, position_encoding="utf-8"
    )
    assert ResolvedClientCapabilities.resolve(types.ClientCapabilities(), None).position_encoding == "utf-16"


class Broken(Feature):
    def document_changed(self, uri: str) -> None:
        raise RuntimeError("boom")


class Recorder(Feature):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def document_opened(self, uri: str) -> None:
        self.seen.append(("open", uri))

    def document_changed(self, uri: str) -> None:
        self.seen.append(("change", uri))


def test_feature_failures_are_isolated_and_lookup_is_typed() -> None:
    features = Features()
    features.add(Broken())
    recorder = features.add(Recorder())
    features.document_opened("a")
    features.document_changed("a")  # Broken raises; Recorder still hears it
    assert recorder.seen == [("open", "a"), ("change", "a")]
    assert features.get(Recorder) is recorder and features.find(Feature) is not None
    with pytest.raises(ValueError):
        features.add(Recorder())
    with pytest.raises(KeyError):
        Features().get(Recorder)


def _frame(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_framer_splits_chunks_resyncs_and_skips_oversized_messages() -> None:
    one, two = _frame({"id": 1}), _frame({"id": 2})
    stream = one + two
    framer = Framer()
    out = [body for i in range(len(stream)) for body in framer.feed(stream[i : i + 1])]  # byte by byte
    assert [json.loads(b) for b in out] == [{"id": 1}, {"id": 2}]
    # A Content-Length too short: the leftover glued to the next header is dropped, the next message read.
    short = b"Content-Length: 5\r\n\r\n" + b'{"id": 3}'
    assert [json.loads(b) for b in Framer().feed(short + two)[1:]] == [{"id": 2}]
    # Above the limit: skipped without buffering it, replaced by a stand-in, then reading resumes.
    framer = Framer(max_bytes=100)
    bodies = framer.feed(b"Content-Length: 1000\r\n\r\n" + b"x" * 400) + framer.feed(b"x" * 600 + two)
    assert json.loads(bodies[0])["params"] == {"bytes": 1000} and json.loads(bodies[1]) == {"id": 2}
    assert len(framer._buf) == 0
    # A lying huge length: a real header inside the skipped bytes ends the skip.
    framer = Framer(max_bytes=100)
    bodies = framer.feed(b"Content-Length: 5000000000\r\n\r\n{}" + two)
    assert json.loads(bodies[-1]) == {"id": 2}


def test_framer_whole_message_chunks_take_the_short_way_with_the_same_result() -> None:
    """A chunk holding exactly one message (the usual case on a pipe) gives what feeding it in
    pieces gives; a chunk that is not exactly one message goes the long way."""
    messages = [_frame({"id": n, "text": "é" * n}) for n in range(5)]
    framer = Framer()
    assert [json.loads(b) for m in messages for b in framer.feed(m)] == [json.loads(m.split(b"\r\n\r\n", 1)[1]) for m in messages]
    assert len(framer._buf) == 0
    # Half a message, then the rest plus the next: still both, in order.
    framer = Framer()
    cut = len(messages[1]) // 2
    assert framer.feed(messages[1][:cut]) == []
    assert [json.loads(b)["id"] for b in framer.feed(messages[1][cut:] + messages[2])] == [1, 2]
    # A whole message above the limit is still skipped (a stand-in), never returned.
    small = Framer(max_bytes=10)
    [stand_in] = small.feed(_frame({"id": 9, "text": "x" * 20}))
    assert json.loads(stand_in)["method"] == "$/spark-ls/discardedMessage"
    # Extra headers, or a length that does not match the chunk: the long way, same rules.
    with_type = b"Content-Length: 9\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n" + b'{"id": 4}'
    assert [json.loads(b) for b in Framer().feed(with_type)] == [{"id": 4}]
    assert Framer().feed(b"Content-Length: 99\r\n\r\n" + b'{"id": 4}') == []


def test_document_line_index_follows_edits_without_rescanning() -> None:
    """The index a request converts positions with comes from the document's own line table,
    kept per edit: it must equal a full rescan after any sequence of edits, whatever the line
    endings (``\\r\\n`` split by an edit, lone ``\\r``, breaks that are not LSP line endings)."""
    import random

    from spark_ls.server.convert import LineIndex, offset_at

    alphabet = ["a", "é", "😀", "\n", "\r", "\r\n", "\u2028", "\x0c", " "]
    rnd = random.Random(14)
    store = DocumentStore()
    for trial in range(60):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        uri = f"file:///tmp/lines{trial}.py"
        store.open(uri, 1, "python", text)
        for version in range(2, 14):
            snap = store.snapshot(uri)
            assert snap.index().starts == LineIndex(snap.text).starts, repr(snap.text)
            rescan = LineIndex(snap.text)
            line = rnd.randint(0, len(rescan.starts))
            start = types.Position(line=line, character=rnd.randint(0, 3))
            end = types.Position(line=line + rnd.randint(0, 2), character=rnd.randint(0, 3))
            if (end.line, end.character) < (start.line, start.character):
                start, end = end, start
            new_text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 4)))
            a, b = offset_at(rescan, start, "utf-16"), offset_at(rescan, end, "utf-16")
            expected = snap.text[:a] + new_text + snap.text[b:]
            if version % 4 == 0:  # full-document sync
                change: types.TextDocumentContentChangeEvent = types.TextDocumentContentChangeWholeDocument(text=expected)
            else:
                change = types.TextDocumentContentChangePartial(range=types.Range(start=start, end=end), text=new_text)
            store.change(uri, version, [change])
            assert store.snapshot(uri).text == expected
        store.close(uri)


def test_moved_scope_lookup_equals_the_whole_file_search() -> None:
    """locate() finds a moved scope by name around its old start; the answer must be the one a
    search over every scope of the file gives (nearest start, first in document order on a tie),
    also when the nearest match is far away or there are several at the same distance."""
    import random

    from spark_ls.context import all_scopes
    from spark_ls.server.engine import _scope_named

    rnd = random.Random(14)
    parts = []
    for i in range(400):
        name = rnd.choice(["run", "load", "save", f"unique_{i}"])
        if rnd.random() < 0.5:
            parts.append(f"class C{i}:\n    def {name}(self):\n        return {i}\n\n")
        else:
            parts.append(f"def {name}(x):\n    y = x + {i}\n    return y\n\n" + "# filler\n" * rnd.randint(0, 30))
    store = DocumentStore()
    store.open("file:///tmp/moved.py", 1, "python", "".join(parts))
    source = store.snapshot("file:///tmp/moved.py").source
    everything = all_scopes(source)
    lines = source.line_count
    for name, kind in [("run", "function"), ("run", "method"), ("save", "method"), ("unique_7", "function"),
                       ("unique_399", "function"), ("missing", "function"), ("C3", "class")]:
        for near in [0, lines - 1, lines + 50, *(rnd.randint(0, lines) for _ in range(25))]:
            found = [s for s in everything if s.name == name and s.kind == kind]
            expected = min(found, key=lambda s: abs(s.start_line - near)) if found else None
            assert _scope_named(source, name, kind, near) == expected, (name, kind, near)
