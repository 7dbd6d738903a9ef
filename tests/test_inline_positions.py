"""The inline handler converts positions through the document's own line table, which the
document keeps up to date edit by edit (no rescan per keystroke): after any sequence of edits it
agrees with a LineIndex built from scratch, for every encoding, line ending and non-ASCII text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lsprotocol import types

from spark_ls.config import Settings
from spark_ls.context.document import SourceDocument
from spark_ls.context.languages import language_for
from spark_ls.server.convert import LineIndex, offset_at, position_at
from spark_ls.server.documents import DocumentSnapshot
from spark_ls.server.inline_completion import to_offset, to_position

ENCODINGS = ("utf-8", "utf-16", "utf-32")
pieces = st.sampled_from(["a", " ", "\n", "\r\n", "\r", "é", "😀", "(", "x"])
text_st = st.lists(pieces, max_size=60).map("".join)


@given(text=text_st, data=st.data())
def test_positions_after_edits_match_a_fresh_line_index(text: str, data: st.DataObject) -> None:
    doc = SourceDocument(text, language_for(language_id="python"))
    doc.line_starts()  # from now on maintained per edit, as the server's didChange does
    for _ in range(data.draw(st.integers(0, 6))):
        current = doc.text
        start = data.draw(st.integers(0, len(current)))
        end = data.draw(st.integers(start, min(len(current), start + 6)))
        doc.apply_change(start, end, data.draw(st.lists(pieces, max_size=4).map("".join)))
    text = doc.text
    snap = DocumentSnapshot("file:///t.py", "/t.py", 1, "python", doc.snapshot(), Settings())
    index = LineIndex(text)
    enc = data.draw(st.sampled_from(ENCODINGS))
    offset = data.draw(st.integers(0, len(text)))
    if 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n":
        offset -= 1  # inside a CRLF pair is not a cursor position
    assert to_position(snap, offset, enc) == position_at(index, offset, enc)
    line = data.draw(st.integers(0, text.count("\n") + text.count("\r") + 1))
    character = data.draw(st.integers(0, 12))
    pos = types.Position(line=line, character=character)
    assert to_offset(snap, pos, enc) == offset_at(index, pos, enc)
