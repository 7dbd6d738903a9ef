"""The incremental index (per top-level node, reused across snapshots) equals the from-scratch
computation: scopes, definitions (with their tree nodes) and imports, after random edits."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from spark_ls.context.document import Snapshot, SourceDocument
from spark_ls.context.index import (
    FileIndex,
    all_scopes,
    clear_chunk_cache,
    definitions_of,
    enclosing_scope,
    file_index,
    import_info,
    scope_nodes,
)
from spark_ls.context.languages import language_for
from spark_ls.context.scopes import find_scopes
from spark_ls.context.symbols import find_definitions, find_import_info

SAMPLES = sorted((Path(__file__).parent / "fixtures" / "context").glob("sample.*"))
# Pieces typed or pasted: tokens that keep code valid, and ones that break it for a while.
PIECES = ["x", "_", " ", "\n", "\n\n", "    ", "(", ")", "{", "}", ":", ";", ",", "#", "//", "\"", "'",
          "def f(a):\n    return a\n", "class K:\n    pass\n", "function g() { return 1; }\n",
          "fn h() -> i32 { 1 }\n", "int k(void) { return 0; }\n", "import os\n", "#include <x.h>\n",
          "use std::io;\n", "package p;\n", "import java.util.List;\n", "import { a } from 'b';\n"]


def _node_key(node: object) -> tuple[object, ...] | None:
    if node is None:
        return None
    return (node.type, node.start_byte, node.end_byte)  # type: ignore[attr-defined]


def _assert_index_equals_full(snap: Snapshot, label: str) -> None:
    full_scopes = find_scopes(snap)
    indexed = scope_nodes(snap)
    assert [(s.scope, s.receiver) for s in indexed] == [(s.scope, s.receiver) for s in full_scopes], label
    assert [_node_key(s.node) for s in indexed] == [_node_key(s.node) for s in full_scopes], label
    full_definitions = find_definitions(snap, full_scopes)
    mine = definitions_of(snap)
    assert [d.key() for d in mine] == [d.key() for d in full_definitions], label
    assert [(_node_key(d.node), _node_key(d.body)) for d in mine] == \
        [(_node_key(d.node), _node_key(d.body)) for d in full_definitions], label
    assert import_info(snap) == find_import_info(snap), label
    index = file_index(snap)
    if index is not None:  # names() (possibly updated from the previous snapshot's) == recomputed
        fresh = FileIndex(snap, index.chunks, None)
        assert index.names() == fresh.names(), label
        assert {name: [(d.name, d.start_line) for d in index.definitions_named([name])] for name in index.names()} \
            == {name: [(d.name, d.start_line) for d in fresh.definitions_named([name])] for name in fresh.names()}, label


def _random_edit(document: SourceDocument, rng: random.Random) -> str:
    text = document.text
    start = rng.randrange(len(text) + 1)
    if rng.random() < 0.4 and text:
        end = min(len(text), start + rng.randrange(1, 12))
        document.apply_change(start, end, "")
        return f"delete {start}:{end}"
    piece = rng.choice(PIECES)
    document.apply_change(start, start, piece)
    return f"insert {piece!r} at {start}"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.suffix)
def test_index_equals_full_computation_after_random_edits(path: Path) -> None:
    clear_chunk_cache()
    language = language_for(path=str(path))
    document = SourceDocument(path.read_text(encoding="utf-8"), language)
    rng = random.Random(path.suffix)
    reused = broken_in_pieces = 0
    for step in range(150):
        what = _random_edit(document, rng)
        snap = document.snapshot()
        _assert_index_equals_full(snap, f"{path.name} step {step}: {what}")
        if snap.tree is not None and not snap.tree.root_node.has_error:
            reused += 1
        index = file_index(snap)
        broken_in_pieces += index is not None and index.broken and not index.whole
        if step % 5 == 4:  # back to the original now and then: valid code, mostly cached chunks
            document.replace_all(path.read_text(encoding="utf-8"))
            _assert_index_equals_full(document.snapshot(), f"{path.name} step {step}: reset")
            if rng.random() < 0.5:  # then a keystroke into an identifier, which keeps it valid
                text = document.text
                at = rng.choice([i for i in range(1, len(text)) if text[i - 1].isalpha() and text[i].isalpha()])
                document.apply_change(at, at, "q")
                snap = document.snapshot()
                _assert_index_equals_full(snap, f"{path.name} step {step}: keystroke at {at}")
                reused += not snap.tree.root_node.has_error  # type: ignore[union-attr]
    assert reused >= 10  # the per-node path ran, not only the whole-file one for broken trees
    assert broken_in_pieces >= 5, broken_in_pieces  # and broken trees were indexed node by node too


def test_a_keystroke_queries_only_the_touched_node() -> None:
    from bench.bench_engine import generate_python

    text = generate_python(1_000, seed=5)
    language = language_for(path="big.py")
    document = SourceDocument(text, language)
    first = file_index(document.snapshot())
    assert first is not None and len(first.chunks) > 50
    at = text.index("result = []", len(text) // 2) + len("result")
    document.apply_change(at, at, "s")
    snap = document.snapshot()
    index = file_index(snap)
    assert index is not None
    # Same facts objects (from the cache) for every chunk but the edited one.
    changed = [i for i, (a, b) in enumerate(zip(first.chunks, index.chunks, strict=True)) if a.facts is not b.facts]
    assert len(changed) == 1
    assert index.chunks[0] is first.chunks[0]  # reused from the previous snapshot's index, not looked up
    assert index.chunks[changed[0]].line <= snap.line_of_offset(at) <= index.chunks[changed[0]].last_line
    _assert_index_equals_full(snap, "keystroke")
    # A keystroke that breaks the syntax: the broken node alone is computed, the rest reused.
    broken_at = text.index("result = []", len(text) // 3) + len("result = [")
    document.apply_change(broken_at, broken_at, "(")
    broken = file_index(document.snapshot())
    assert broken is not None and broken.broken and not broken.whole
    assert broken.chunks[0] is index.chunks[0]
    _assert_index_equals_full(document.snapshot(), "broken keystroke")
    document.apply_change(broken_at, broken_at + 1, "")
    assert document.snapshot().text == snap.text
    _assert_index_equals_full(document.snapshot(), "repaired")
    # A stray character before a definition: an error sharing its line with the next node.
    stray_at = document.text.index("\ndef ", len(text) // 3) + 1
    document.apply_change(stray_at, stray_at, ":")
    stray = file_index(document.snapshot())
    assert stray is not None and stray.broken and not stray.whole
    _assert_index_equals_full(document.snapshot(), "stray character")
    document.apply_change(stray_at, stray_at + 1, "")
    line = snap.line_of_offset(at)
    assert enclosing_scope(snap, line, line) == next(
        s for s in reversed(all_scopes(snap)) if s.start_line <= line <= s.end_line
    )


def test_broken_files_are_indexed_whole_and_equal_too() -> None:
    text = 'def greet(name):\n    print("hello, " + name\n\ndef add(a, b):\n    return a + b\n'
    document = SourceDocument(text, language_for(path="syn.py"))
    snap = document.snapshot()
    index = file_index(snap)
    assert index is not None and len(index.chunks) == 1
    _assert_index_equals_full(snap, "broken")
    assert [s.name for s in all_scopes(snap)] == ["greet", "add"]


def test_line_table_follows_edits_including_cr_lf() -> None:
    from spark_ls.context.document import split_lines

    rng = random.Random(11)
    document = SourceDocument("a\r\nb\rc\n\nd", language_for(path="x.py"))
    assert document.snapshot().lines  # computed once: later edits keep it up to date
    for step in range(400):
        text = document.text
        start = rng.randrange(len(text) + 1)
        end = min(len(text), start + rng.choice([0, 0, 1, 2, 5]))
        document.apply_change(start, end, rng.choice(["", "x", "\n", "\r", "\r\n", "ab\ncd", "\n\r"]))
        snap = document.snapshot()
        assert "lines" in snap.__dict__, step  # from the document, not split again
        assert snap.lines == split_lines(snap.text), step
        expected_starts = [0]
        for line in snap.lines:
            expected_starts.append(expected_starts[-1] + len(line))
        assert snap._line_starts == expected_starts, step


def test_section_size_is_counted_exactly_without_rendering() -> None:
    from spark_ls.context.assembly import Section, _render_section, _section_chars

    rng = random.Random(5)
    for _ in range(500):
        text = "".join(rng.choice(["ab", "é", "\n", "\r", "\r\n", "  x", "😀"]) for _ in range(rng.randrange(12)))
        section = Section(rng.choice(["t", "target: function f", ""]), rng.choice([0, 8, 98, 9_998]), 0, text,
                          elided=rng.random() < 0.3)
        width = rng.choice([1, 2, 4, 5])
        assert _section_chars(section, width) == len(_render_section(section, width)), (text, section, width)


@pytest.mark.parametrize("path", SAMPLES[:4] + SAMPLES[5:6], ids=lambda p: p.suffix)
def test_several_edits_between_snapshots(path: Path) -> None:
    language = language_for(path=str(path))
    original = path.read_text(encoding="utf-8")
    document = SourceDocument(original, language)
    rng = random.Random(path.suffix + "many")
    file_index(document.snapshot())
    for step in range(60):
        if step % 6 == 5:
            document.replace_all(original)
        for _ in range(rng.randrange(1, 4)):
            text = document.text
            if rng.random() < 0.7:  # typing into identifiers mostly keeps the code valid
                at = rng.choice([i for i in range(1, len(text)) if text[i - 1].isalpha() and text[i].isalpha()])
                document.apply_change(at, at, rng.choice(["z", "zz", ""]))
            else:
                _random_edit(document, rng)
        _assert_index_equals_full(document.snapshot(), f"{path.name} step {step}")


def test_warm_if_incremental_builds_only_one_edit_away_and_equals_the_full_computation() -> None:
    """After a keystroke the server brings the analysis up to date right after answering the
    listing, but only when it is incremental; a cold text is left to the idle-time warm-up."""
    from spark_ls.context.analysis import cached_analysis
    from spark_ls.context.index import FileIndex, warm_if_incremental

    path = next(p for p in SAMPLES if p.suffix == ".py")
    text = path.read_text(encoding="utf-8")
    document = SourceDocument(text, language_for(path=str(path)))
    cold = document.snapshot()
    assert warm_if_incremental(cold) is False
    analysed = cached_analysis(cold)
    assert analysed is None or not isinstance(analysed.index, FileIndex)  # nothing built
    file_index(cold)  # analysed, e.g. by a resolve
    at = text.index("\n", len(text) // 2)
    for step in range(6):
        document.apply_change(at, at + step % 2, "" if step % 2 else "x")
        snap = document.snapshot()
        assert warm_if_incremental(snap) is True
        analysed = cached_analysis(snap)
        assert analysed is not None and isinstance(analysed.index, FileIndex)
        _assert_index_equals_full(snap, f"step {step}")
    # Two edits between snapshots: no single edit to build on, not warmed.
    document.apply_change(at, at, "y")
    document.apply_change(at, at + 1, "")
    assert warm_if_incremental(document.snapshot()) is False
