"""Incremental reparsing after edits must equal a fresh parse (including multi-byte text)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_ls.context import (
    SourceDocument,
    all_scopes,
    language_for,
    snapshot_of,
    syntax_errors,
)

FIXTURES = Path(__file__).parent / "fixtures" / "context"

# Fragments that change structure (brackets, newlines, indentation, keywords) plus multi-byte text.
FRAGMENTS = st.sampled_from(
    ["", "x", "(", ")", "{", "}", ":", "\n", "\n    ", "def g():\n    return 1\n", "class ", "é", "😀",
     '"', "'é😀'", "# 😀 comment\n", "\r\n", " + ", "return ", ";", "if x:\n", "\t", "ü = 1\n"]
)


def _shape(node) -> list[tuple]:
    out = []
    stack = [node]
    while stack:
        current = stack.pop()
        out.append((current.type, current.start_byte, current.end_byte, current.is_missing, current.is_error))
        stack.extend(reversed(current.children))
    return out


@st.composite
def edits(draw, length: int):
    start = draw(st.integers(0, length))
    end = draw(st.integers(start, min(length, start + 40)))
    text = "".join(draw(st.lists(FRAGMENTS, max_size=3)))
    return start, end, text


def _check_random_edits(language_name: str, fixture: str, data: st.DataObject) -> None:
    language = language_for(language_id=language_name)
    text = (FIXTURES / fixture).read_text(encoding="utf-8")
    document = SourceDocument(text, language)
    # An independent reference: the same edits through tree-sitter's own API, offsets computed
    # the slow obvious way.
    parser = language.parser()
    reference = parser.parse(text.encode())
    for _ in range(data.draw(st.integers(1, 6))):
        start, end, new_text = data.draw(edits(len(document.text)))
        document.apply_change(start, end, new_text)
        updated = text[:start] + new_text + text[end:]
        start_byte, old_end_byte = len(text[:start].encode()), len(text[:end].encode())
        new_end_byte = start_byte + len(new_text.encode())
        reference.edit(
            start_byte, old_end_byte, new_end_byte,
            _point(text, start_byte), _point(text, old_end_byte), _point(updated, new_end_byte),
        )
        reference = parser.parse(updated.encode(), reference)
        text = updated
        assert document.text == text
        assert _shape(document.tree.root_node) == _shape(reference.root_node)
        fresh = snapshot_of(text, language)
        if not fresh.tree.root_node.has_error:
            # On valid code an incremental parse equals a fresh one. (On broken code tree-sitter's
            # error recovery may legitimately differ between the two.)
            assert _shape(document.tree.root_node) == _shape(fresh.tree.root_node)
            snap = document.snapshot()
            assert all_scopes(snap) == all_scopes(fresh)
            assert syntax_errors(snap) == syntax_errors(fresh) == []


def _point(text: str, byte: int) -> tuple[int, int]:
    prefix = text.encode()[:byte]
    return prefix.count(b"\n"), len(prefix) - (prefix.rfind(b"\n") + 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_python_incremental_equals_fresh_parse(data: st.DataObject) -> None:
    _check_random_edits("python", "sample.py", data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_typescript_incremental_equals_fresh_parse(data: st.DataObject) -> None:
    _check_random_edits("typescript", "sample.ts", data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_rust_incremental_equals_fresh_parse(data: st.DataObject) -> None:
    _check_random_edits("rust", "sample.rs", data)


def test_typing_a_function_keystroke_by_keystroke_after_emoji() -> None:
    language = language_for(language_id="python")
    document = SourceDocument("s = 'é😀'\n", language)
    typed = "def later(a):\n    return a + 'ü'\n"
    for character in typed:
        document.apply_change(len(document.text), len(document.text), character)
    fresh = snapshot_of(document.text, language)
    assert _shape(document.tree.root_node) == _shape(fresh.tree.root_node)
    [scope] = all_scopes(document.snapshot())
    assert document.text[scope.start : scope.end] == typed.rstrip("\n")


def test_replace_all_equals_fresh_parse() -> None:
    language = language_for(language_id="go")
    text = (FIXTURES / "sample.go").read_text(encoding="utf-8")
    document = SourceDocument(text, language)
    changed = text.replace("helper(", "assist(").replace("é😀", "ü")
    document.replace_all(changed)
    assert document.text == changed
    assert _shape(document.tree.root_node) == _shape(snapshot_of(changed, language).tree.root_node)
