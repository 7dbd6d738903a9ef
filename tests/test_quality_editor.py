"""The second look in the editor (pytest-lsp over stdio, fake endpoint): with `secondLook` the
model is asked about its own fix before the edit is offered, and a NO withholds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsp_helpers import (
    apply_text_edits,
    document_edit,
    lsp_client,
    open_document,
    wait_ready,
)
from lsprotocol import types
from model_endpoint import input_text

from spark_ls.diffs import unified_diff

SOURCE = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize(("verdict", "offered"), [("NO", False), ("YES", True)])
async def test_second_look_decides_whether_the_fix_is_offered(model_endpoint, tmp_path: Path, verdict: str,
                                                              offered: bool) -> None:
    looks: list[str] = []

    def reply(body: dict[str, Any]) -> str:
        if "You review a proposed change" in str(body.get("instructions")):
            looks.append(input_text(body.get("input")))
            return verdict
        return unified_diff(SOURCE, FIXED, "calc.py")

    model_endpoint.reply_for = reply
    uri = (tmp_path / "calc.py").as_uri()
    async with lsp_client(model_endpoint, root=tmp_path, init_options={"secondLook": True}) as client:
        await wait_ready(client)
        open_document(client, uri, SOURCE)
        position = types.Position(line=1, character=4)
        actions = await client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=types.Range(start=position, end=position),
            context=types.CodeActionContext(diagnostics=[]),
        ))
        fix = next(a for a in actions if a.title == "Fix bug in add")
        resolved = await client.code_action_resolve_async(fix)
    assert len(looks) == 1 and "return a - b" in looks[0] and "return a + b" in looks[0]
    if offered:
        assert apply_text_edits(SOURCE, document_edit(resolved.edit).edits) == FIXED
    else:
        assert resolved.edit is None
