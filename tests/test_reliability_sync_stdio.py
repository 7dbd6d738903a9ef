"""Hostile text sync over stdio: the real server's view of the text equals the LSP reference.

Random (seeded) didOpen/didChange sequences — surrogate pairs, combining marks, every line ending,
separators that are not LSP line endings, positions past line ends, inside surrogate pairs and
past the last line — are sent as raw JSON-RPC to `spark-ls serve` (pygls's own client would
rewrite such positions before sending them); then "Edit with instruction" over the whole
document makes the server send the model its line-numbered view of the document, which the fake
model records. That view must equal the reference's lines (test_reliability_documents), for
UTF-16, UTF-8 and UTF-32 clients. No debug command is needed: this is the text the model would
have been asked to edit.
"""

from __future__ import annotations

import random
import re

import pytest
from lsp_reference import PIECES, line_units, ref_apply, ref_lines
from model_endpoint import ModelEndpoint, input_text
from raw_lsp import RawServer, frame
from reliability_helpers import wait_for

SEQUENCES = 12
NOTIFICATIONS = 6
_NUMBERED = re.compile(r"^ *(\d+) \| (.*)$")


def _text(rng: random.Random, most: int = 12) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, most)))


def _position(rng: random.Random, text: str, encoding: str) -> tuple[int, int]:
    widths = line_units(text, encoding)
    line = rng.randint(0, len(widths))  # sometimes one past the last line
    limit = widths[line] if line < len(widths) else 0
    return line, rng.randint(0, limit + 3)


def _change(rng: random.Random, text: str, encoding: str) -> tuple[int, int, int, int, str] | str:
    if rng.random() < 0.08:
        return _text(rng)
    (sl, sc), (el, ec) = sorted([_position(rng, text, encoding), _position(rng, text, encoding)])
    return sl, sc, el, ec, _text(rng, 6)


def _server_lines(prompt: str) -> list[str]:
    lines: list[str] = []
    files = 0
    for raw in prompt.split("\n"):  # not splitlines(): U+2028 and friends are content
        if raw.startswith("File: "):
            files += 1
            if files > 1:
                break  # context from other open documents follows
        match = _NUMBERED.match(raw)
        if match:
            assert int(match.group(1)) == len(lines) + 1, (raw, lines, prompt)
            lines.append(match.group(2))
    return lines


def _expected_lines(text: str) -> list[str]:
    lines = [line.content for line in ref_lines(text)]
    if lines and lines[-1] == "" and text:  # the empty "line" after a final line ending
        lines.pop()
    return lines


def _range(change: tuple[int, int, int, int, str]) -> dict:
    sl, sc, el, ec, _ = change
    return {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}


def _content_change(change: tuple[int, int, int, int, str] | str) -> dict:
    if isinstance(change, str):
        return {"text": change}
    return {"range": _range(change), "text": change[4]}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
async def test_server_text_matches_reference_over_stdio(model_endpoint: ModelEndpoint, encoding: str) -> None:
    rng = random.Random(f"spark-ls sync {encoding}")
    raw = await RawServer.start(model_endpoint)
    try:
        await raw.request(0, "initialize", {
            "processId": None, "rootUri": None,
            "capabilities": {"general": {"positionEncodings": [encoding]}},
        })
        assert (await raw.response(0))["result"]["capabilities"]["positionEncoding"] == encoding
        await raw.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        for sequence in range(SEQUENCES):
            uri = f"file:///tmp/spark-ls-sync/seq{sequence}.py"
            text = "x = 1\n" + _text(rng)
            await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
                "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}}))
            log: list = []
            for version in range(2, 2 + NOTIFICATIONS):
                batch = []
                for _ in range(rng.randint(1, 3)):
                    step = _change(rng, text, encoding)
                    batch.append(step)
                    text = ref_apply(text, [step], encoding)
                log.append(batch)
                await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [_content_change(c) for c in batch]}}))
            # A known last line (inserted past the end), so the view is never empty.
            marker = (10**6, 0, 10**6, 0, "\nmarker = 1\n")
            text = ref_apply(text, [marker], encoding)
            await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": 99}, "contentChanges": [_content_change(marker)]}}))
            calls = len(model_endpoint.calls)
            model_endpoint.replies.append("")  # no change: we only want to see the request
            last = len(ref_lines(text))
            whole = {"start": {"line": 0, "character": 0}, "end": {"line": last, "character": 0}}
            await raw.request(1000 + sequence, "workspace/executeCommand", {
                "command": "spark.editWithInstruction", "arguments": [uri, whole, "look"]})
            answer = await raw.response(1000 + sequence)
            assert answer.get("result", {}).get("applied") is False, answer
            await wait_for(lambda calls=calls: len(model_endpoint.calls) > calls, "the model request")
            seen = _server_lines(input_text(model_endpoint.calls[-1].body.get("input")))
            assert seen == _expected_lines(text), (encoding, sequence, log)
            await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}}))
        await raw.alive(5000)
    finally:
        await raw.close()


@pytest.mark.parametrize(
    ("text", "change", "expected"),
    [
        # Select to a position past the end of the last line (editors do): the whole line goes.
        ("abc", (0, 0, 0, 999, "X"), "X"),
        ("def f():\n    return 1", (1, 4, 1, 80, "pass"), "def f():\n    pass"),
        # A form feed is not an LSP line ending: "line 0" is the whole first line.
        ("a\x0cb = 1\nc\n", (0, 3, 0, 99, "!"), "a\x0cb!\nc\n"),
        ("x = '\u2028'\ny\n", (1, 0, 1, 9, "z"), "x = '\u2028'\nz\n"),
    ],
)
async def test_known_corruptions_stay_fixed(model_endpoint: ModelEndpoint, text: str, change: tuple, expected: str) -> None:
    """Regressions: pygls's own workspace used to rewrite these positions in place (clamped to
    length - 1, on str.splitlines() lines) before spark-ls applied them."""
    raw = await RawServer.start(model_endpoint)
    try:
        await raw.request(0, "initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        await raw.response(0)
        await raw.send(frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        uri = "file:///tmp/spark-ls-sync/known.py"
        await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}}))
        await raw.send(frame({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": 2}, "contentChanges": [_content_change(change)]}}))
        assert ref_apply(text, [change], "utf-16") == expected  # the reference agrees with the spec
        model_endpoint.replies.append("")
        end = {"line": 99, "character": 0}
        await raw.request(1, "workspace/executeCommand", {
            "command": "spark.editWithInstruction", "arguments": [uri, {"start": {"line": 0, "character": 0}, "end": end}, "look"]})
        assert (await raw.response(1)).get("result", {}).get("applied") is False
        seen = _server_lines(input_text(model_endpoint.calls[-1].body.get("input")))
        assert seen == _expected_lines(expected)
    finally:
        await raw.close()
