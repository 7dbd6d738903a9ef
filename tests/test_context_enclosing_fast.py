"""The range-limited scope lookup (used right after a keystroke) agrees with the whole-file one."""

from pathlib import Path

import pytest

from spark_ls.context import picker
from spark_ls.context.document import snapshot_of
from spark_ls.context.languages import language_for

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "context").glob("sample.*"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.suffix)
def test_fast_enclosing_scope_equals_full_analysis(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    language = language_for(path=str(path))
    assert language is not None
    lines = text.count("\n") + 1
    ranges = [(a, b) for a in range(lines) for b in (a, min(lines - 1, a + 3))]
    fast = {}
    for start, end in ranges:
        fresh = snapshot_of(text, language)  # nothing cached: the range-limited path
        fast[(start, end)] = picker.enclosing_scope(fresh, start, end)
    full = snapshot_of(text, language)
    picker.all_scopes(full)  # analysis cached: the whole-file path
    found_some = False
    for (start, end), scope in fast.items():
        expected = picker.enclosing_scope(full, start, end)
        assert scope == expected, (path.name, start, end)
        found_some |= scope is not None
    assert found_some
