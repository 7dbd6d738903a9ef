"""The diff engine on the replies models actually send, and the ones it must refuse."""

from __future__ import annotations

import pytest

from spark_ls.context.languages import language_for
from spark_ls.diffs import PatchRefused, apply_reply, parse_diff, unified_diff

PYTHON = language_for(path="x.py")

SOURCE = '''\
"""Utilities."""

import os
import sys


def area(width, height):
    """Area of a rectangle."""
    result = width * height
    return result


def perimeter(width, height):
    total = 2 * (width + height)
    return total


class Shape:
    def __init__(self, name):
        self.name = name

    def describe(self):
        return f"{self.name}"
'''
EVERYTHING = [(0, 23)]
AREA = (6, 9)  # def area ... return result
PERIMETER = (12, 14)
IMPORTS = (2, 3)


def diff_reply(old: str, new: str, path: str = "src/geometry.py") -> str:
    return unified_diff(old, new, path)


def apply(reply: str, old: str = SOURCE, allowed=EVERYTHING, **kwargs) -> str:
    kwargs.setdefault("mode", "diff")
    return apply_reply(old, reply, path=kwargs.pop("path", "src/geometry.py"), allowed=allowed, **kwargs)


NEW_AREA = SOURCE.replace("    result = width * height\n", "    result = abs(width * height)\n")


def test_plain_diff() -> None:
    assert apply(diff_reply(SOURCE, NEW_AREA)) == NEW_AREA


@pytest.mark.parametrize("fence", ["```diff", "```patch", "```", "~~~diff"])
def test_fenced_diff_with_prose_around(fence: str) -> None:
    closing = fence[:3]
    reply = f"Sure! Here is the change:\n\n{fence}\n{diff_reply(SOURCE, NEW_AREA)}{closing}\n\nLet me know if you need more.\n"
    assert apply(reply) == NEW_AREA


def test_prose_without_fence_and_bullets_after_a_blank_line() -> None:
    reply = "The fix:\n" + diff_reply(SOURCE, NEW_AREA) + "\nNotes:\n- uses abs()\n- nothing else\n"
    assert apply(reply) == NEW_AREA


def test_prose_glued_to_diff_lines_is_refused() -> None:
    reply = "@@ -8,3 +8,3 @@\n     \"\"\"Area of a rectangle.\"\"\"\n-    result = width * height\nresult line without prefix\n+    result = abs(width * height)\n"
    with pytest.raises(PatchRefused, match="hunk 1.*no diff prefix"):
        apply(reply)


def test_missing_headers_and_numbers() -> None:
    reply = "```diff\n@@ @@\n     \"\"\"Area of a rectangle.\"\"\"\n-    result = width * height\n+    result = abs(width * height)\n     return result\n```"
    assert apply(reply) == NEW_AREA


def test_wrong_counts_and_off_by_n_numbers() -> None:
    reply = "--- a/geometry.py\n+++ b/geometry.py\n@@ -2,9 +2,7 @@\n     \"\"\"Area of a rectangle.\"\"\"\n-    result = width * height\n+    result = abs(width * height)\n     return result\n"
    assert apply(reply) == NEW_AREA


def test_blank_context_line_without_its_space() -> None:
    new = SOURCE.replace("    return total\n\n\nclass Shape:", "    return total\n\n\n# shapes\nclass Shape:")
    reply = "```diff\n@@ -15,4 +15,5 @@\n     return total\n\n\n+# shapes\n class Shape:\n```"
    assert apply(reply) == new


def test_trailing_whitespace_drift() -> None:
    reply = "@@ -9,2 +9,2 @@\n-    result = width * height   \n+    result = abs(width * height)\n     return result  \n"
    assert apply(reply) == NEW_AREA


@pytest.mark.parametrize("indent", ["  ", "\t", ""])
def test_indentation_drift_is_reindented(indent: str) -> None:
    """The model copied the function with 2 spaces, tabs or none; the file uses 4."""
    new = SOURCE.replace("    result = width * height\n", "    if width < 0:\n        width = -width\n    result = width * height\n")
    body = "\n".join(
        [
            " def area(width, height):",
            f" {indent}\"\"\"Area of a rectangle.\"\"\"",
            f"+{indent}if width < 0:",
            f"+{indent}{indent}width = -width",
            f" {indent}result = width * height",
        ]
    )
    if indent == "":  # a fully dedented copy cannot show the nested level's width
        with pytest.raises(PatchRefused, match="hunk 1"):
            apply(f"@@ -7,3 +7,5 @@\n{body}\n")
        return
    assert apply(f"@@ -7,3 +7,5 @@\n{body}\n") == new


def test_dedented_hunk_with_two_levels_of_context() -> None:
    new = SOURCE.replace("        self.name = name\n", "        self.name = name.strip()\n")
    reply = "@@ @@\n def __init__(self, name):\n-    self.name = name\n+    self.name = name.strip()\n"
    assert apply(reply) == new


def test_crlf_file_keeps_crlf() -> None:
    old = SOURCE.replace("\n", "\r\n")
    expected = NEW_AREA.replace("\n", "\r\n")
    reply = diff_reply(SOURCE, NEW_AREA)  # the model writes LF
    assert apply(reply, old=old) == expected
    crlf_reply = reply.replace("\n", "\r\n")  # or the whole reply arrives with CRLF
    assert apply(crlf_reply, old=old) == expected


def test_no_final_newline() -> None:
    old = SOURCE.rstrip("\n")
    new = old.replace('return f"{self.name}"', 'return f"<{self.name}>"')
    assert apply(diff_reply(old, new), old=old) == new
    # A model that leaves out the "\ No newline" markers: the file's style is kept.
    reply = "@@ -23,1 +23,1 @@\n-        return f\"{self.name}\"\n+        return f\"<{self.name}>\"\n"
    assert apply(reply, old=old) == new
    # Adding a line after a last line without newline.
    reply = "@@ -23,1 +23,2 @@\n         return f\"{self.name}\"\n+    # end\n"
    assert apply(reply, old=old) == old + "\n    # end"


def test_hunks_out_of_order() -> None:
    new = NEW_AREA.replace("    total = 2 * (width + height)\n", "    total = 2 * width + 2 * height\n")
    diff = unified_diff(SOURCE, new, "geometry.py", context=1)
    header, first, second = diff.split("@@ -")[0], "@@ -" + diff.split("@@ -")[1], "@@ -" + diff.split("@@ -")[2]
    assert apply(header + second + first) == new


def test_ambiguous_placement_is_refused() -> None:
    old = "def a():\n    return 1\n\n\ndef b():\n    return 1\n"
    reply = "@@ @@\n-    return 1\n+    return 2\n"
    with pytest.raises(PatchRefused, match=r"hunk 1: .*lines 2, 6"):
        apply(reply, old=old, allowed=[(0, 5)])
    # Equally far from the stated line.
    reply = "@@ -4,1 +4,1 @@\n-    return 1\n+    return 2\n"
    with pytest.raises(PatchRefused, match=r"hunk 1: .*equally well at lines 2 and 6"):
        apply(reply, old=old, allowed=[(0, 5)])
    # The allowed range makes it unique.
    assert apply(reply, old=old, allowed=[(4, 5)]) == old[: -2] + "2\n"


def test_context_not_found_names_the_hunk() -> None:
    reply = diff_reply(SOURCE, NEW_AREA) + "@@ -20,2 +20,2 @@\n     def describe(self):\n-        return self.nickname\n+        return self.name\n"
    with pytest.raises(PatchRefused, match=r"hunk 2: its context was not found.*nickname"):
        apply(reply)


def test_partial_application_never_happens() -> None:
    """The first hunk is fine, the second is not: nothing is applied."""
    reply = diff_reply(SOURCE, NEW_AREA) + "@@ @@\n-    missing line\n+    other\n"
    with pytest.raises(PatchRefused, match="hunk 2"):
        apply(reply)


def test_overlapping_hunks_are_refused() -> None:
    hunk = "@@ -9,1 +9,1 @@\n-    result = width * height\n+    result = abs(width * height)\n"
    other = "@@ -8,2 +8,2 @@\n     \"\"\"Area of a rectangle.\"\"\"\n-    result = width * height\n+    result = width * height * 1\n"
    with pytest.raises(PatchRefused, match="hunks 1 and 2 overlap"):
        apply(hunk + other)


@pytest.mark.parametrize("header", ["a/src/other.py", "b/lib/geometry.py", "../geometry.py", "a/../geometry.py", "/dev/null"])
def test_header_naming_another_file_is_refused(header: str) -> None:
    reply = diff_reply(SOURCE, NEW_AREA).replace("a/src/geometry.py", header)
    with pytest.raises(PatchRefused):
        apply(reply)


@pytest.mark.parametrize("header", ["a/src/geometry.py", "b/geometry.py", "geometry.py", "/home/me/project/src/geometry.py", "./src/geometry.py"])
def test_header_naming_the_document_is_accepted(header: str) -> None:
    reply = diff_reply(SOURCE, NEW_AREA).replace("--- a/src/geometry.py", f"--- {header}").replace("+++ b/src/geometry.py", f"+++ {header}")
    assert apply(reply, path="/home/me/project/src/geometry.py") == NEW_AREA


def test_multiple_files_refused_unless_all_are_the_document() -> None:
    other = "--- a/src/other.py\n+++ b/src/other.py\n@@ -1 +1 @@\n-x\n+y\n"
    with pytest.raises(PatchRefused, match="other.py"):
        apply(diff_reply(SOURCE, NEW_AREA) + other)
    new = NEW_AREA.replace('return f"{self.name}"', "return self.name")
    second = unified_diff(NEW_AREA, new, "geometry.py")
    # The same document named in two sections (geometry.py and src/geometry.py) is fine.
    assert apply(diff_reply(SOURCE, NEW_AREA) + second) == new


def test_rename_is_refused() -> None:
    reply = "diff --git a/src/geometry.py b/src/geometry.py\nrename from src/geometry.py\nrename to src/geometry.py\n" + diff_reply(SOURCE, NEW_AREA)
    with pytest.raises(PatchRefused, match="renames"):
        apply(reply)


def test_edit_outside_allowed_is_refused() -> None:
    with pytest.raises(PatchRefused, match=r"hunk 1: it changes line 9, outside .*lines 13-15"):
        apply(diff_reply(SOURCE, NEW_AREA), allowed=[PERIMETER])
    assert apply(diff_reply(SOURCE, NEW_AREA), allowed=[AREA]) == NEW_AREA


def test_new_import_next_to_import_block_is_allowed() -> None:
    new = NEW_AREA.replace("import sys\n", "import sys\nimport math\n")
    assert apply(diff_reply(SOURCE, new), allowed=[AREA, IMPORTS]) == new
    with pytest.raises(PatchRefused, match="outside"):
        apply(diff_reply(SOURCE, new), allowed=[AREA])
    # An import added at the top of a file without imports: the empty range (k, k-1).
    old = '"""Doc."""\n\n\ndef f():\n    return 1\n'
    new_text = '"""Doc."""\nimport math\n\n\ndef f():\n    return math.pi\n'
    assert apply(diff_reply(old, new_text), old=old, allowed=[(3, 4), (1, 0)]) == new_text
    with pytest.raises(PatchRefused):
        apply(diff_reply(old, new_text), old=old, allowed=[(3, 4), (2, 1)])


def test_syntax_error_introduced_is_refused() -> None:
    broken = SOURCE.replace("    result = width * height\n", "    result = (width * height\n")
    with pytest.raises(PatchRefused, match=r"syntax error at line \d+"):
        apply(diff_reply(SOURCE, broken), language=PYTHON)
    assert apply(diff_reply(SOURCE, broken)) == broken  # without a language nothing is parsed


def test_indentation_error_introduced_is_refused() -> None:
    broken = SOURCE.replace("    return result\n", "      return result\n")
    with pytest.raises(PatchRefused, match=r"indentation error at line 10"):
        apply(diff_reply(SOURCE, broken), language=PYTHON)


def test_existing_syntax_errors_do_not_block_a_fix_elsewhere() -> None:
    old = SOURCE.replace("    total = 2 * (width + height)\n", "    total = 2 * (width + height\n")
    new = old.replace("    result = width * height\n", "    result = abs(width * height)\n")
    assert apply(diff_reply(old, new), old=old, language=PYTHON) == new


def test_old_tree_is_reused_and_left_untouched() -> None:
    parser = PYTHON.parser()
    tree = parser.parse(SOURCE.encode())
    before = str(tree.root_node)
    assert apply(diff_reply(SOURCE, NEW_AREA), language=PYTHON, old_tree=tree) == NEW_AREA
    assert str(tree.root_node) == before


@pytest.mark.parametrize("reply", ["", "   \n\n", "\n"])
@pytest.mark.parametrize("mode", ["diff", "scope"])
def test_empty_reply_means_no_change(reply: str, mode: str) -> None:
    assert apply(reply, mode=mode, scope=AREA) is SOURCE


def test_reply_without_diff_is_refused() -> None:
    with pytest.raises(PatchRefused, match="no diff"):
        apply("I could not find anything to change.")


def test_diff_without_changes_changes_nothing() -> None:
    assert apply("@@ -9,1 +9,1 @@\n     result = width * height\n") == SOURCE


def test_parse_diff_keeps_hints_and_recounts() -> None:
    (file_diff,) = parse_diff("```diff\n--- a/x.py\n+++ b/x.py\n@@ -3,7 +3,1 @@ def f():\n a\n-b\n+c\n+d\n```")
    (hunk,) = file_diff.hunks
    assert (file_diff.source, file_diff.target) == ("a/x.py", "b/x.py")
    assert hunk.old_start == 3 and hunk.hint == 2
    assert hunk.old_side == ["a", "b"] and hunk.new_side == ["a", "c", "d"]


# ----------------------------------------------------------------------------------- scope mode

def scope_apply(reply: str, old: str = SOURCE, scope=AREA, allowed=None, **kwargs) -> str:
    allowed = [scope] if allowed is None else allowed
    return apply_reply(old, reply, path="geometry.py", mode="scope", allowed=allowed, scope=scope, **kwargs)


def test_scope_mode_replaces_the_scope() -> None:
    reply = 'Here is the improved function:\n```python\ndef area(width, height):\n    """Area of a rectangle."""\n    result = abs(width * height)\n    return result\n```\nIt now handles negatives.'
    assert scope_apply(reply, language=PYTHON) == NEW_AREA


def test_scope_mode_with_new_import() -> None:
    reply = '```python\nimport math\nimport os\n\ndef area(width, height):\n    """Area of a rectangle."""\n    result = math.fabs(width * height)\n    return result\n```'
    expected = SOURCE.replace("import sys\n", "import sys\nimport math\n").replace(
        "    result = width * height\n", "    result = math.fabs(width * height)\n"
    )
    assert scope_apply(reply, allowed=[AREA, IMPORTS], language=PYTHON) == expected
    with pytest.raises(PatchRefused, match="adds imports"):
        scope_apply(reply, allowed=[AREA])


def test_scope_mode_imports_only_missing_names() -> None:
    old = "from os import path\n\n\ndef f():\n    return 1\n"
    reply = "```python\nfrom os import path, sep\ndef f():\n    return sep\n```"
    expected = "from os import path\nfrom os import sep\n\n\ndef f():\n    return sep\n"
    assert scope_apply(reply, old=old, scope=(3, 4), allowed=[(3, 4), (0, 0)]) == expected


def test_scope_mode_dedented_method_is_reindented() -> None:
    reply = "```python\ndef describe(self):\n    name = self.name.title()\n    return f\"{name}\"\n```"
    expected = SOURCE.replace('        return f"{self.name}"\n', '        name = self.name.title()\n        return f"{name}"\n')
    assert scope_apply(reply, scope=(21, 22), language=PYTHON) == expected


def test_scope_mode_two_space_reply_is_rescaled() -> None:
    reply = "```python\ndef perimeter(width, height):\n  if width < 0:\n    width = -width\n  return 2 * (width + height)\n```"
    expected = SOURCE.replace(
        "    total = 2 * (width + height)\n    return total\n",
        "    if width < 0:\n        width = -width\n    return 2 * (width + height)\n",
    )
    assert scope_apply(reply, scope=PERIMETER, language=PYTHON) == expected


def test_scope_mode_keeps_decorators_the_model_left_out() -> None:
    old = "class A:\n    @property\n    def x(self):\n        return 1\n"
    reply = "```python\ndef x(self):\n    return 2\n```"
    assert scope_apply(reply, old=old, scope=(1, 3)) == "class A:\n    @property\n    def x(self):\n        return 2\n"


def test_scope_mode_unfenced_reply_with_prose() -> None:
    reply = 'Sure.\n\n    def describe(self):\n        return f"[{self.name}]"\n\nThis wraps the name.'
    expected = SOURCE.replace('        return f"{self.name}"\n', '        return f"[{self.name}]"\n')
    assert scope_apply(reply, scope=(21, 22)) == expected


def test_scope_mode_echoed_line_numbers_are_stripped() -> None:
    reply = '```python\n  22 |     def describe(self):\n  23 |         return self.name\n```'
    expected = SOURCE.replace('        return f"{self.name}"\n', "        return self.name\n")
    assert scope_apply(reply, scope=(21, 22)) == expected


def test_scope_mode_reply_without_code_is_refused() -> None:
    with pytest.raises(PatchRefused, match="no code"):
        scope_apply("I think the function is fine as it is.")


def test_scope_mode_syntax_error_is_refused() -> None:
    reply = "```python\ndef area(width, height):\n    return (width * height\n```"
    with pytest.raises(PatchRefused, match="syntax error"):
        scope_apply(reply, language=PYTHON)


def test_scope_mode_accepts_a_diff_reply() -> None:
    assert scope_apply(diff_reply(SOURCE, NEW_AREA)) == NEW_AREA


def test_diff_mode_accepts_rewritten_scope_when_scope_is_known() -> None:
    reply = '```python\ndef area(width, height):\n    """Area of a rectangle."""\n    result = abs(width * height)\n    return result\n```'
    assert apply(reply, scope=AREA, allowed=[AREA]) == NEW_AREA


def test_scope_mode_crlf_and_last_line_without_newline() -> None:
    old = "def f():\r\n    return 1"
    reply = "```python\ndef f():\n    return 2\n```"
    assert scope_apply(reply, old=old, scope=(0, 1)) == "def f():\r\n    return 2"


def test_refusal_reason_never_leaks_reply_secrets_by_repr() -> None:
    error = PatchRefused("hunk 3: its context was not found", hunk=3)
    assert str(error) == error.reason and error.hunk == 3


def test_scope_mode_whole_file_echo_keeps_only_the_target() -> None:
    echoed = NEW_AREA.replace("import os\nimport sys\n", "import os\nimport sys\nimport math\n")
    reply = f"Here is the full file:\n```python\n{echoed}```"
    expected = SOURCE.replace("import sys\n", "import sys\nimport math\n").replace(
        "    result = width * height\n", "    result = abs(width * height)\n"
    )
    assert scope_apply(reply, allowed=[AREA, IMPORTS], language=PYTHON) == expected


def test_scope_mode_keeps_a_new_helper_next_to_the_target_only_when_the_action_allows() -> None:
    reply = '```python\ndef _positive(value):\n    return abs(value)\n\n\ndef area(width, height):\n    """Area of a rectangle."""\n    result = _positive(width * height)\n    return result\n```'
    expected = SOURCE.replace(
        "def area(width, height):\n", "def _positive(value):\n    return abs(value)\n\n\ndef area(width, height):\n"
    ).replace("    result = width * height\n", "    result = _positive(width * height)\n")
    assert scope_apply(reply, language=PYTHON, new_definitions=True) == expected
    with pytest.raises(PatchRefused, match="new definition `_positive`"):
        scope_apply(reply, language=PYTHON)


def test_verification_works_from_several_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    broken = SOURCE.replace("    result = width * height\n", "    result = (width * height\n")

    def run(index: int) -> str:
        if index % 2:
            return apply(diff_reply(SOURCE, NEW_AREA), language=PYTHON)
        try:
            apply(diff_reply(SOURCE, broken), language=PYTHON)
        except PatchRefused as error:
            return error.reason
        return "applied"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(40)))
    assert results[1::2] == [NEW_AREA] * 20
    assert all(result.startswith("the edit introduces a syntax error") for result in results[0::2])


def test_javascript_syntax_is_verified_too() -> None:
    javascript = language_for(path="app.js")
    old = "function add(a, b) {\n  return a + b;\n}\n\nfunction sub(a, b) {\n  return a - b;\n}\n"
    good = old.replace("return a + b;", "return Number(a) + Number(b);")
    bad = old.replace("return a + b;", "return (a + b;")
    assert apply(unified_diff(old, good, "app.js"), old=old, path="app.js", language=javascript) == good
    with pytest.raises(PatchRefused, match="syntax error at line 2"):
        apply(unified_diff(old, bad, "app.js"), old=old, path="app.js", language=javascript)


def test_scope_mode_window_keeps_lines_that_also_occur_elsewhere() -> None:
    old = "setup()\nprint('done')\nx = 1\n\n\ndef f():\n    print('done')\n\n\nprint('done')\n"
    reply = "```python\nsetup()\nprint('done')\nx = 2\n```"
    assert scope_apply(reply, old=old, scope=(0, 2)) == old.replace("x = 1", "x = 2")


def test_scope_mode_window_over_the_imports_keeps_them() -> None:
    old = "import os\nimport sys\n\nVALUE = os.sep\n\n\ndef f():\n    return 1\n"
    reply = "```python\nimport os\nimport sys\n\nVALUE = os.sep + sys.platform\n```"
    assert scope_apply(reply, old=old, scope=(0, 3)) == old.replace("VALUE = os.sep\n", "VALUE = os.sep + sys.platform\n")


def test_lone_header_line_is_still_checked() -> None:
    hunk = "@@ -9,1 +9,1 @@\n-    result = width * height\n+    result = abs(width * height)\n"
    assert apply("+++ b/src/geometry.py\n" + hunk) == NEW_AREA
    with pytest.raises(PatchRefused, match="other.py"):
        apply("+++ b/src/other.py\n" + hunk)


def test_the_same_hunk_twice_is_applied_once() -> None:
    diff = diff_reply(SOURCE, NEW_AREA)
    reply = f"First attempt:\n```diff\n{diff}```\nFinal answer:\n```diff\n{diff}```\n"
    assert apply(reply) == NEW_AREA


def test_scope_mode_decorators_above_the_scope_are_not_duplicated() -> None:
    old = "class A:\n    @property\n    def x(self):\n        return 1\n"
    reply = "```python\n@property\ndef x(self):\n    return 2\n```"
    assert scope_apply(reply, old=old, scope=(2, 3)) == "class A:\n    @property\n    def x(self):\n        return 2\n"


def test_unified_diff_shape() -> None:
    assert unified_diff(SOURCE, SOURCE, "src/geometry.py") == ""
    diff = unified_diff("a\nb", "a\nc", "/abs/src/x.py")
    assert diff == "--- a/abs/src/x.py\n+++ b/abs/src/x.py\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    assert unified_diff("a\n", "a\nb\n", "x.py").startswith("--- a/x.py\n+++ b/x.py\n@@ -1 +1,2 @@\n")


def test_hunk_naming_a_forbidden_place_is_not_moved_to_an_allowed_copy() -> None:
    old = "def a():\n    return 1\n\n\ndef b():\n    return 1\n"
    reply = "@@ -6,1 +6,1 @@\n-    return 1\n+    return 2\n"
    with pytest.raises(PatchRefused, match="hunk 1: it changes line 6, outside"):
        apply(reply, old=old, allowed=[(0, 1)])


def test_scope_reply_defining_another_function_is_refused() -> None:
    from spark_ls.diffs import PatchRefused, apply_reply

    old = "import os\n\n\ndef average(xs):\n    return sum(xs) / (len(xs) - 1)\n"
    with pytest.raises(PatchRefused, match="does not rewrite `average`"):
        apply_reply(
            old, "```python\ndef spread(xs):\n    return max(xs) - min(xs)\n```",
            path="a.py", mode="scope", allowed=[(3, 4)], scope=(3, 4),
        )
    fixed = apply_reply(
        old, "```python\ndef average(xs):\n    return sum(xs) / len(xs)\n```",
        path="a.py", mode="scope", allowed=[(3, 4)], scope=(3, 4),
    )
    assert fixed == "import os\n\n\ndef average(xs):\n    return sum(xs) / len(xs)\n"


def test_deleting_a_last_line_without_newline_keeps_the_newline_of_the_line_before() -> None:
    # Found by hypothesis: the kept line before it ends the file now, with its own newline.
    old, new = "    x = 1\n    x = 1", "def f(x):\n    x = 1\n"
    diff = unified_diff(old, new, "pkg/mod.py", context=0)
    assert apply_reply(old, diff, path="pkg/mod.py", mode="diff", allowed=[(0, 1)]) == new
    with pytest.raises(PatchRefused):  # the deletion is of line 2, outside line 1
        apply_reply(old, diff, path="pkg/mod.py", mode="diff", allowed=[(0, 0)])
