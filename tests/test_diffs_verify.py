"""Verification: the fast path (the edited block parsed on its own) agrees with parsing the
whole file, and errors that reach past the block are caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_ls.context.languages import language_for
from spark_ls.diffs import PatchRefused, verify_syntax
from spark_ls.diffs.verify import error_nodes

PYTHON = language_for(path="x.py")
LINES = [
    "def f(x):",
    "    return x",
    "    y = (1,",
    "    2)",
    "class C:",
    "    def m(self):",
    "        pass",
    "x = 1",
    '"""',
    "'''doc'''",
    "",
    "@decorator",
    "    if x:",
    "        x = [",
    "]",
    "else:",
    "  z = 3",
    "# comment",
]


def full_errors(text: str) -> int:
    return len(error_nodes(PYTHON.parser().parse(text.encode())))


def test_already_broken_file_is_judged_by_the_whole_file() -> None:
    # Found by hypothesis: in a file that is already broken, the edited block parsed on its own
    # but the whole file gained an error.
    old = "def f(x):\ndef f(x):\ndef f(x):\ndef f(x):\n]\ndef f(x):\n    def m(self):\n"
    new = "def f(x):\ndef f(x):\ndef f(x):\ndef f(x):\n]\n    def m(self):\n"
    with pytest.raises(PatchRefused, match="syntax error"):
        verify_syntax(old, new, PYTHON, old_tree=PYTHON.parser().parse(old.encode()))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=1, max_size=20), st.data())
def test_fast_path_agrees_with_whole_file_parse(lines: list[str], data: st.DataObject) -> None:
    old = "\n".join(lines) + "\n"
    new_lines = list(lines)
    position = data.draw(st.integers(0, len(new_lines) - 1))
    new_lines[position : position + data.draw(st.integers(0, 2))] = data.draw(
        st.lists(st.sampled_from(LINES), max_size=3)
    )
    new = "\n".join(new_lines) + ("\n" if new_lines else "")
    old_tree = PYTHON.parser().parse(old.encode())
    try:
        verify_syntax(old, new, PYTHON, old_tree=old_tree)
    except PatchRefused as refusal:
        if "syntax error" in refusal.reason:
            assert full_errors(new) > full_errors(old)
        else:  # the compiler's verdict on the edited block: the new file does not compile
            assert "indentation error" in refusal.reason or "compile error" in refusal.reason
            with pytest.raises(SyntaxError):
                compile(new, "new.py", "exec", dont_inherit=True)
        return
    assert full_errors(new) <= full_errors(old)


def test_unclosed_string_swallowing_the_rest_is_refused() -> None:
    old = 'def f():\n    return 1\n\n\ndef g():\n    return 2\n'
    new = old.replace("return 1", 'return """1')
    with pytest.raises(PatchRefused, match="syntax error"):
        verify_syntax(old, new, PYTHON)


def test_block_boundary_inside_a_string_falls_back_to_the_whole_file() -> None:
    old = 'X = """\ndef fake():\n    pass\n"""\n\n\ndef real():\n    return 1\n'
    new = old.replace("    pass\n", '    pass\n"""\n(\n')
    with pytest.raises(PatchRefused, match="syntax error"):
        verify_syntax(old, new, PYTHON)
    fine = old.replace("    pass\n", "    pass  # still inside the string\n")
    verify_syntax(old, fine, PYTHON)
