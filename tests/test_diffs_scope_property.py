"""Scope mode, generated: a method rewritten by the model at any indentation lands exactly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from spark_ls.context.languages import language_for
from spark_ls.diffs import apply_reply

PYTHON = language_for(path="x.py")
STATEMENTS = ["x = 1", "y = x + 2", "return x", "print(x)", "pass", "if x:\n    y = 1", "for i in range(3):\n    x += i"]


def method(name: str, statements: list[str], indent: str) -> list[str]:
    lines = [f"{indent}def {name}(self, x):"]
    for statement in statements:
        lines += [f"{indent}    {part}" for part in statement.split("\n")]
    return lines


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=4), min_size=1, max_size=4),
    st.data(),
    st.sampled_from(["", "    ", "  ", "        "]),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_rewritten_method_replaces_exactly_its_lines(
    bodies: list[list[str]], data: st.DataObject, reply_indent: str, ending: str, fenced: bool
) -> None:
    lines = ["import os", "", "", "class Box:"]
    spans = []
    for number, body in enumerate(bodies):
        start = len(lines)
        lines += method(f"m{number}", body, "    ")
        spans.append((start, len(lines) - 1))
        lines.append("")
    target = data.draw(st.integers(0, len(bodies) - 1))
    new_body = data.draw(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=4))
    old = ending.join(lines) + ending
    replacement = method(f"m{target}", new_body, "    ")
    first, last = spans[target]
    expected = ending.join(lines[:first] + replacement + lines[last + 1 :]) + ending
    code = "\n".join(line[4:] if reply_indent == "" else reply_indent + line[4:] for line in replacement)
    if reply_indent == "  ":  # a model that indents with 2 spaces throughout
        code = "\n".join(
            "  " + line[4:].replace("    ", "  ") for line in replacement
        )
    reply = f"Here you go:\n```python\n{code}\n```\n" if fenced else code + "\n"
    result = apply_reply(
        old, reply, path="box.py", mode="scope", allowed=[spans[target]], scope=spans[target], language=PYTHON
    )
    assert result == expected
