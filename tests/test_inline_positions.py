"""The inline handler's cursor-local position conversion agrees with the document-wide LineIndex
(spark_ls/server/convert.py) for every encoding, line ending and non-ASCII text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types

from spark_ls.config import Settings
from spark_ls.context.document import snapshot_of
from spark_ls.server.convert import LineIndex, offset_at, position_at
from spark_ls.server.documents import DocumentSnapshot
from spark_ls.server.inline_completion import to_offset, to_position

ENCODINGS = ("utf-8", "utf-16", "utf-32")
text_st = st.lists(st.sampled_from(["a", " ", "\n", "\r\n", "é", "😀", "(", "x"]), max_size=60).map("".join)


def snap_of(text: str) -> DocumentSnapshot:
    return DocumentSnapshot("file:///t.py", "/t.py", 1, "python", snapshot_of(text, None), Settings())


@given(text=text_st, data=st.data())
def test_to_offset_and_to_position_match_the_line_index(text: str, data: st.DataObject) -> None:
    snap = snap_of(text)
    index = LineIndex(text)
    enc = data.draw(st.sampled_from(ENCODINGS))
    offset = data.draw(st.integers(0, len(text)))
    if "\r\n" in text[offset - 1 : offset + 1] and 0 < offset < len(text) and text[offset - 1] == "\r":
        offset -= 1  # inside a CRLF pair is not a cursor position
    assert to_position(snap, offset, enc) == position_at(index, offset, enc)
    line = data.draw(st.integers(0, text.count("\n") + 1))
    character = data.draw(st.integers(0, 12))
    pos = types.Position(line=line, character=character)
    assert to_offset(snap, pos, enc) == offset_at(index, pos, enc)
