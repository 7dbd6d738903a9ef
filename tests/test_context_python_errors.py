"""Python syntax errors are reported on the line of the mistake, not where recovery began."""

from spark_ls.context.document import snapshot_of
from spark_ls.context.languages import language_for
from spark_ls.context.picker import syntax_errors

PY = language_for(path="x.py")


def test_missing_colon_after_def_is_reported_on_the_def_line() -> None:
    text = "import os\n\n\ndef area(r)\n    return 3.14 * r * r\n"
    [problem] = syntax_errors(snapshot_of(text, PY))
    assert problem.start_line == 3
    assert "':'" in problem.message
    assert (problem.start_col, problem.end_col) == (0, len("def area(r)"))


def test_tree_sitter_message_kept_when_it_finds_the_line() -> None:
    [problem] = syntax_errors(snapshot_of("x = 1\nprint(x\n", PY))
    assert problem.start_line == 1


def test_valid_python_has_no_problems() -> None:
    assert syntax_errors(snapshot_of("def f(x):\n    return x\n", PY)) == []
