"""Shared by the inline-completion tests: client capabilities, requests and item helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from lsp_helpers import apply_text_edits
from lsprotocol import types
from model_endpoint import ModelEndpoint, input_text
from pytest_lsp import LanguageClient, client_capabilities

URI = Path("/tmp/spark-inline/m.py").as_uri()


def caps() -> types.ClientCapabilities:
    base = client_capabilities("visual-studio-code")
    text_document = attrs.evolve(
        base.text_document, inline_completion=types.InlineCompletionClientCapabilities(dynamic_registration=False)
    )
    return attrs.evolve(base, text_document=text_document)


def position_of(text: str, marker: str = "|") -> tuple[str, types.Position]:
    offset = text.index(marker)
    before = text[:offset]
    line = before.count("\n")
    character = len(before) - (before.rfind("\n") + 1)
    return text.replace(marker, "", 1), types.Position(line=line, character=character)


def request(pos: types.Position, uri: str = URI) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=pos,
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    )


def type_text(client: LanguageClient, pos: types.Position, text: str, version: int, uri: str = URI) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=text)],
        )
    )


def output_calls(endpoint: ModelEndpoint) -> list[Any]:
    return [c for c in endpoint.calls if c.body.get("generate") is not False]


def items_of(result: Any) -> list[types.InlineCompletionItem]:
    if result is None:
        return []
    return list(result.items if isinstance(result, types.InlineCompletionList) else result)


def apply_item(text: str, item: types.InlineCompletionItem) -> str:
    assert item.range is not None
    return apply_text_edits(text, [types.TextEdit(range=item.range, new_text=str(item.insert_text))])


def inline_reply(body: dict) -> str:
    text = input_text(body.get("input"))
    if "return a<CURSOR>" in text:
        return " + b"
    if "return <CURSOR>" in text:
        return "a + b"
    return ""
