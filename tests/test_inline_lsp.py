"""Inline completions and next edit, driven as an editor does: `spark-ls serve` over stdio
(pytest-lsp) against the loopback model endpoint speaking the real protocols."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import TEST_API_KEY
from inline_helpers import (
    URI,
    apply_item,
    caps,
    items_of,
    output_calls,
    position_of,
    request,
    type_text,
)
from lsp_helpers import (
    apply_text_edits,
    lsp_client,
    open_document,
    server_env,
    wait_ready,
)
from lsprotocol import types
from model_endpoint import ModelEndpoint, input_text
from pytest_lsp import LanguageClient


async def test_server_advertises_inline_completion(model_endpoint: ModelEndpoint) -> None:
    async with lsp_client(model_endpoint, capabilities=caps()) as client:
        assert client.init_result.capabilities.inline_completion_provider is not None  # type: ignore[attr-defined]


async def test_ghost_text_item_range_and_typed_through_cache(model_endpoint: ModelEndpoint) -> None:
    source, pos = position_of("def add(a, b):\n    return |\n\n\nprint(add(1, 2))\n")
    model_endpoint.replies.append("a + b")
    async with lsp_client(model_endpoint, capabilities=caps()) as client:
        await wait_ready(client)
        open_document(client, URI, source)
        items = items_of(await client.text_document_inline_completion_async(request(pos)))
        assert len(items) == 1
        item = items[0]
        assert item.insert_text == "a + b"
        assert item.range == types.Range(start=pos, end=pos)
        assert apply_item(source, item).startswith("def add(a, b):\n    return a + b\n")
        call = output_calls(model_endpoint)[-1]
        assert "<CURSOR>" in str(call.body.get("input"))
        calls_before = len(output_calls(model_endpoint))

        # The user types "a " (the suggestion's first characters): served from the cache.
        type_text(client, pos, "a ", 2)
        moved = types.Position(line=pos.line, character=pos.character + 2)
        items = items_of(await client.text_document_inline_completion_async(request(moved)))
        assert [i.insert_text for i in items] == ["+ b"]
        assert items[0].range == types.Range(start=moved, end=moved)
        assert len(output_calls(model_endpoint)) == calls_before  # no model request

        # A character that departs from the suggestion asks the model again.
        model_endpoint.replies.append(" b")
        type_text(client, moved, "-", 3)
        moved2 = types.Position(line=pos.line, character=moved.character + 1)
        items = items_of(await client.text_document_inline_completion_async(request(moved2)))
        assert [i.insert_text for i in items] == [" b"]
        assert len(output_calls(model_endpoint)) == calls_before + 1


async def test_no_duplicated_suffix_and_statement_boundary(model_endpoint: ModelEndpoint) -> None:
    source, pos = position_of("def show(xs):\n    print(|)\n    return xs\n")
    # The model closes the bracket the editor had already inserted, and runs on into code that
    # is already there: the item replaces the ")" and stops at the end of the statement.
    model_endpoint.replies.append("len(xs))\n    return xs\n")
    async with lsp_client(model_endpoint, capabilities=caps()) as client:
        await wait_ready(client)
        open_document(client, URI, source)
        items = items_of(await client.text_document_inline_completion_async(request(pos)))
        assert len(items) == 1
        item = items[0]
        assert item.range is not None and item.range.end.character == pos.character + 1
        assert apply_item(source, item) == "def show(xs):\n    print(len(xs))\n    return xs\n"


async def test_burst_of_requests_cancels_stale_generations() -> None:
    source, pos = position_of("def f(values):\n    total = |\n")
    endpoint = ModelEndpoint(api_key=TEST_API_KEY, first_token_delay=0.4, reply_for=lambda body: "sum(values)").start()
    try:
        async with lsp_client(endpoint, capabilities=caps()) as client:
            await wait_ready(client)
            open_document(client, URI, source)
            futures = []
            line = pos
            for k in range(20):  # 20 keystrokes, 30 ms apart, each followed by a request
                type_text(client, line, "x", k + 2)
                line = types.Position(line=line.line, character=line.character + 1)
                futures.append(client.text_document_inline_completion_async(request(line)))
                await asyncio.sleep(0.03)
            results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 20)
            await asyncio.sleep(0.2)
        answered = [r for r in results if items_of(r)]
        assert len(answered) == 1 and results[-1] is answered[0], results
        completed = [c for c in output_calls(endpoint) if c.outcome == "completed"]
        assert len(completed) <= 1, [c.outcome for c in output_calls(endpoint)]
        # The model was asked; how many stale requests reached it before being superseded depends on
        # timing (under load the server coalesces the whole burst into one call): never more than
        # one request per keystroke, and never more than one completed generation.
        assert 1 <= len(output_calls(endpoint)) <= 20
    finally:
        endpoint.stop()


async def test_disabled_with_a_reason_when_no_model_is_usable(model_endpoint: ModelEndpoint) -> None:
    source, pos = position_of("x = |\n")
    env = server_env(model_endpoint, OPENAI_API_KEY="sk-wrong-key-000000000000")
    async with lsp_client(model_endpoint, capabilities=caps(), env=env) as client:
        await wait_ready(client)
        open_document(client, URI, source)
        result = await client.text_document_inline_completion_async(request(pos))
        assert items_of(result) == []
        for _ in range(100):
            if any("inline completions disabled" in m.message for m in client.messages):
                break
            await asyncio.sleep(0.02)
        reasons = [m.message for m in client.messages if "inline completions disabled" in m.message]
        assert reasons and ("key" in reasons[0].lower() or "auth" in reasons[0].lower()), client.messages
        assert "sk-wrong-key" not in reasons[0]
    assert output_calls(model_endpoint) == []


async def test_setting_turns_inline_completions_off(model_endpoint: ModelEndpoint) -> None:
    source, pos = position_of("x = |\n")
    model_endpoint.replies.append("1")
    async with lsp_client(model_endpoint, capabilities=caps(), init_options={"inlineCompletion": False}) as client:
        await wait_ready(client)
        open_document(client, URI, source)
        assert items_of(await client.text_document_inline_completion_async(request(pos))) == []
        await asyncio.sleep(0.1)
        assert any("inline_completion = false" in m.message for m in client.messages)
    assert output_calls(model_endpoint) == []


async def test_http_chat_path() -> None:
    source, pos = position_of("def double(n):\n    return |\n")
    endpoint = ModelEndpoint(api_key=TEST_API_KEY, ws_supported=False, responses_supported=False).start()
    endpoint.replies.append("```python\n    return n * 2\n```")  # a chatty reply: fenced, indented
    try:
        async with lsp_client(endpoint, capabilities=caps()) as client:
            await wait_ready(client)
            open_document(client, URI, source)
            items = items_of(await client.text_document_inline_completion_async(request(pos)))
            assert [i.insert_text for i in items] == ["n * 2"]
        assert [c.transport for c in output_calls(endpoint)] == ["chat"]
    finally:
        endpoint.stop()


NES_SOURCE = (
    "def surface(width, height):\n"
    "    return width * height\n"
    "\n"
    "\n"
    "def report(w, h):\n"
    "    print(area(w, h))\n"
    "    return area(w, h)\n"
    "\n"
    "\n"
    + "".join(f"X{i} = {i}\n" for i in range(8))
    + "# far below: outside the editable region\n"
    "TOTAL = area(1, 2)\n"
)


def plain(obj: Any) -> Any:
    """pygls hands custom results over as named tuples: back to plain JSON values."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


async def _next_edit(client: LanguageClient, pos: types.Position) -> Any:
    return plain(await client.protocol.send_request_async(
        "spark/nextEdit", {"textDocument": {"uri": URI}, "position": {"line": pos.line, "character": pos.character}}
    ))


async def test_next_edit_is_confined_to_its_region(model_endpoint: ModelEndpoint) -> None:
    old = NES_SOURCE.replace("def surface", "def area")
    pos = types.Position(line=5, character=4)
    region_lines = NES_SOURCE.splitlines(keepends=True)[2:12]  # the cursor's line - 3 .. + 6
    good = "```python\n" + "".join(region_lines).replace("area(", "surface(") + "```"
    # A diff that also edits a line far outside the region: the engine must refuse all of it.
    bad = (
        "--- a/m.py\n+++ b/m.py\n@@ -6,2 +6,2 @@\n-    print(area(w, h))\n+    print(surface(w, h))\n"
        "     return area(w, h)\n@@ -19,1 +19,1 @@\n-TOTAL = area(1, 2)\n+TOTAL = surface(1, 2)\n"
    )
    async with lsp_client(model_endpoint, capabilities=caps()) as client:
        await wait_ready(client)
        open_document(client, URI, old)
        type_text_range(client, old, NES_SOURCE, 2)  # the user renamed area -> surface
        model_endpoint.replies.append(good)
        result = await _next_edit(client, pos)
        assert result is not None
        region = result["region"]
        edits = [types.TextEdit(range=types.Range(start=types.Position(**e["range"]["start"]), end=types.Position(**e["range"]["end"])), new_text=e["newText"]) for e in result["edits"]]
        assert all(region["startLine"] <= e.range.start.line and e.range.end.line <= region["endLine"] + 1 for e in edits)
        new = apply_text_edits(NES_SOURCE, edits)
        assert "print(surface(w, h))" in new and "return surface(w, h)" in new
        assert new.endswith("TOTAL = area(1, 2)\n")  # outside the region: untouched
        sent = str(output_calls(model_endpoint)[-1].body.get("input"))
        assert "-def area(width, height):" in sent and "+def surface(width, height):" in sent  # recent edit
        assert "<|editable_region_start|>" in sent and "<|user_cursor_is_here|>" in sent

        # The same prediction is offered as an inline item when it edits the cursor's line.
        items = items_of(await client.text_document_inline_completion_async(request(types.Position(line=5, character=10))))
        assert [i.insert_text for i in items] == ["surface"]  # replaces "area" on the cursor line
        assert items[0].range == types.Range(start=types.Position(line=5, character=10), end=types.Position(line=5, character=14))
        assert apply_item(NES_SOURCE, items[0]).count("print(surface(w, h))") == 1

        model_endpoint.replies.append(bad)
        try:
            await _next_edit(client, pos)
        except Exception as exc:  # noqa: BLE001 - pytest-lsp raises the JSON-RPC error
            assert "refused" in str(exc).lower() or "outside" in str(exc).lower()
        else:
            raise AssertionError("a reply editing outside the region was accepted")


def type_text_range(client: LanguageClient, old: str, new: str, version: int) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=new)],
        )
    )


async def test_slow_block_shows_its_first_line_first_and_the_rest_without_a_new_request() -> None:
    source, pos = position_of("def total(xs):\n    |\n")
    block = "t = 0\n    for x in xs:\n        t += x\n    return t\n"
    # 8 characters per streamed delta, 4 deltas a second: the first line is there after ~0.5 s,
    # the whole block after ~1.5 s.
    endpoint = ModelEndpoint(api_key=TEST_API_KEY, tokens_per_second=4, reply_for=lambda body: block).start()
    try:
        async with lsp_client(endpoint, capabilities=caps()) as client:
            await wait_ready(client)
            open_document(client, URI, source)
            loop = asyncio.get_running_loop()
            started = loop.time()
            items = items_of(await client.text_document_inline_completion_async(request(pos)))
            first_ms = (loop.time() - started) * 1000
            assert [i.insert_text for i in items] == ["t = 0"], items
            assert first_ms < 1300, first_ms  # before the block was complete
            calls = len(output_calls(endpoint))
            # The user accepts the line; the editor asks again at its end.
            type_text(client, pos, "t = 0", 2)
            end = types.Position(line=pos.line, character=pos.character + len("t = 0"))
            items = items_of(await client.text_document_inline_completion_async(request(end)))
            assert [i.insert_text for i in items] == ["\n    for x in xs:\n        t += x\n    return t"], items
            assert len(output_calls(endpoint)) == calls  # the rest came from the same generation
    finally:
        endpoint.stop()


def _stable_part(call: Any) -> str:
    """The stable context of an inline request as the model received it (before the excerpt)."""
    text = input_text(call.body.get("input"))
    return text.split("File /tmp/spark-inline/m.py, excerpt around the cursor", 1)[0]


BIG_TAIL = "def total(orders):\n    r = discount_rate('gold')\n    s = |\n    return s\n"


def big_source() -> str:
    head = "import math\n\n\ndef discount_rate(tier):\n    return {'gold': 0.2}.get(tier, 0.0)\n\n\n"
    filler = "".join(f"def step_{i}(x):\n    y = x * {i}\n    return math.floor(y)\n\n\n" for i in range(340))
    return head + filler + BIG_TAIL  # ~1,700 lines: above SYNC_STABLE_LINES


async def test_stable_context_on_a_large_file_catches_up_after_a_pause(model_endpoint: ModelEndpoint) -> None:
    source, pos = position_of(big_source())
    assert source.count("\n") > 1500
    model_endpoint.replies.extend(["sum(orders)"] * 40)
    async with lsp_client(model_endpoint, capabilities=caps()) as client:
        await wait_ready(client)
        open_document(client, URI, source)
        version, col = 2, pos.character
        found = False
        for _ in range(20):  # a keystroke and a request, then a pause; until the header caught up
            type_text(client, types.Position(line=pos.line, character=col), "z", version)  # departs: a model call
            version, col = version + 1, col + 1
            await client.text_document_inline_completion_async(request(types.Position(line=pos.line, character=col)))
            sent = output_calls(model_endpoint)[-1]
            assert "s = " + "z" * (col - pos.character) + "<CURSOR>" in input_text(sent.body.get("input"))  # current window
            if "def discount_rate(tier):" in _stable_part(sent):
                found = True
                break
            await asyncio.sleep(0.6)  # the user pauses: the stable context is recomputed for the cursor
        assert found, _stable_part(output_calls(model_endpoint)[-1])
        assert "import math" in _stable_part(output_calls(model_endpoint)[-1])


async def test_stable_context_is_byte_identical_while_typing_in_one_function(model_endpoint: ModelEndpoint) -> None:
    source, pos = position_of(
        "import math\n\n\ndef discount_rate(tier):\n    return 0.2\n\n\n" + "\n" * 30 + BIG_TAIL
    )
    model_endpoint.replies.extend(["sum(orders)"] * 5)
    async with lsp_client(model_endpoint, capabilities=caps()) as client:
        await wait_ready(client)
        open_document(client, URI, source)
        for k in range(4):
            type_text(client, types.Position(line=pos.line, character=pos.character + k), "x", k + 2)
            await client.text_document_inline_completion_async(request(types.Position(line=pos.line, character=pos.character + k + 1)))
        stable = {_stable_part(c) for c in output_calls(model_endpoint)}
        # The prompt starts with the same bytes at every keystroke (a provider's prompt cache
        # reuses them), and they hold the definition the function uses, from outside the window.
        assert len(stable) == 1 and "def discount_rate(tier):" in stable.pop()
