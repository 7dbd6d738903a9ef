"""The per-keystroke work of inline completions is incremental, and still exact: the changed span
found from a hint, the recent-edit history fed hints and the line table, and the stable context
reused while the cursor stays in its scope."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from spark_ls.context.document import SourceDocument
from spark_ls.context.languages import language_for
from spark_ls.inline.next_edit import EditHistory, changed_span
from spark_ls.inline.stable import FRESH, MISSING, STALE, StableContext, place_of

PY = language_for(language_id="python")

chars = st.sampled_from(["a", "b", " ", "\n", "(", "é", "\r\n"])
texts = st.lists(chars, max_size=300).map("".join)


def brute_span(old: str, new: str) -> tuple[int, int, int]:
    """The definition: common prefix and suffix char by char, widened to whole lines."""
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    start = old.rfind("\n", 0, p) + 1
    old_end = old.find("\n", len(old) - s)
    new_end = new.find("\n", len(new) - s)
    old_end = len(old) if old_end < 0 else old_end + 1
    new_end = len(new) if new_end < 0 else new_end + 1
    return start, max(start, old_end), max(start, new_end)


@given(old=texts, data=st.data())
def test_changed_span_is_exact_whatever_the_hint(old: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(old)))
    end = data.draw(st.integers(start, min(len(old), start + 40)))
    new = old[:start] + data.draw(st.lists(chars, max_size=8).map("".join)) + old[end:]
    # Long texts exercise the galloping steps: pad both ends identically.
    pad = "x = 1\n" * data.draw(st.sampled_from([0, 50, 400]))
    old2, new2 = pad + old + pad, pad + new + pad
    expected = brute_span(old2, new2)
    hint = data.draw(st.one_of(st.none(), st.integers(0, len(new2) + 5)))
    assert changed_span(old2, new2, hint) == expected


def _line_starts(text: str) -> list[int]:
    return SourceDocument(text, None).snapshot().line_starts()


@given(base=texts, data=st.data())
def test_edit_history_with_hints_records_the_same_edits(base: str, data: st.DataObject) -> None:
    plain, hinted = EditHistory(), EditHistory()
    text = base
    plain.observe("k", "m.py", text)
    hinted.observe("k", "m.py", text)
    for _ in range(data.draw(st.integers(1, 8))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 5)))
        text = text[:start] + data.draw(st.lists(chars, max_size=4).map("".join)) + text[end:]
        cursor = data.draw(st.integers(0, len(text)))  # any hint: a wrong one only costs time
        plain.observe("k", "m.py", text)
        if "\r" in text:  # the line table breaks at a lone "\r" too; the history counts "\n"
            hinted.observe("k", "m.py", text, cursor)
        else:
            hinted.observe("k", "m.py", text, cursor, _line_starts(text))
    assert hinted.edits("k") == plain.edits("k")


FILE = (
    "import os\n\n\ndef rate(kind):\n    return 0.1 if kind == 'a' else 0.2\n\n\n"
    + "".join(f"def filler_{i}(x):\n    y = x + {i}\n    return y\n\n\n" for i in range(40))
    + "def total(orders):\n    r = rate('a')\n    s = \n    return s\n\n\n"
    + "def other(orders):\n    return len(orders)\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_stable_context_is_reused_in_the_same_scope_and_recomputed_elsewhere() -> None:
    doc = SourceDocument(FILE, PY)
    clock = Clock()
    stable = StableContext(max_age=5.0, clock=clock)
    cursor = FILE.index("    s = ") + len("    s = ")
    snap = doc.snapshot()
    assert stable.lookup("u", place_of(snap, cursor, 512))[0] == MISSING
    sections = stable.compute("u", snap, cursor, path="/w/m.py", budget=512)
    assert any("def rate" in s.text for s in sections)  # the definition the function uses
    assert any("import os" in s.text for s in sections)

    # Typing inside the function: the same sections, fresh, whatever the text now is.
    for i, ch in enumerate("sum(o"):
        doc.apply_change(cursor + i, cursor + i, ch)
        snap = doc.snapshot()
        state, found = stable.lookup("u", place_of(snap, cursor + i + 1, 512))
        assert state == FRESH and found == sections
    assert stable.computed == 1

    # Another function: stale (the old sections are still handed out until recomputed).
    elsewhere = doc.text.index("return len(orders)")
    assert stable.lookup("u", place_of(snap, elsewhere, 512)) == (STALE, sections)
    # Another budget, or too old: stale too.
    here = cursor + len("sum(o")
    assert stable.lookup("u", place_of(snap, here, 1024))[0] == STALE
    clock.now += 5.5
    assert stable.lookup("u", place_of(snap, here, 512))[0] == STALE
    stable.compute("u", snap, here, path="/w/m.py", budget=512)
    assert stable.lookup("u", place_of(snap, here, 512))[0] == FRESH
    stable.forget("u")
    assert stable.lookup("u", place_of(snap, here, 512))[0] == MISSING


def test_module_level_places_are_near_within_a_few_lines() -> None:
    text = "import os\n" + "".join(f"X{i} = {i}\n" for i in range(200))
    snap = SourceDocument(text, PY).snapshot()
    stable = StableContext(max_lines=40)
    line_offset = [0, *[i + 1 for i, c in enumerate(text) if c == "\n"]]
    stable.compute("u", snap, line_offset[100], path="/w/c.py", budget=512)
    assert stable.lookup("u", place_of(snap, line_offset[130], 512))[0] == FRESH
    assert stable.lookup("u", place_of(snap, line_offset[150], 512))[0] == STALE


@given(text=st.lists(st.sampled_from(["a", " ", "\n", "é", "("]), max_size=80).map("".join), data=st.data())
def test_window_lines_from_the_line_table_match_counting(text: str, data: st.DataObject) -> None:
    from spark_ls.inline.context import _Lines, line_of, line_table

    snap = SourceDocument(text, None).snapshot()
    offset = data.draw(st.integers(0, len(text)))
    table, scan = _Lines(text, offset, line_table(snap)), _Lines(text, offset)
    assert table.table is not None or not text
    assert line_of(snap, offset) == text.count("\n", 0, offset) == scan.line == table.line
    assert table.start == scan.start and table.last_line() == scan.last_line()
    for line in range(text.count("\n") + 3):
        assert table.bounds(line) == scan.bounds(line), line
