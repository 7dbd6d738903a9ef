"""Shared generators for the diff-engine tests: file pairs and model-style diff perturbations."""

from __future__ import annotations

import random
import re

from hypothesis import strategies as st

# A small alphabet so that lines repeat (ambiguous placement happens), with indentation at
# 4-space levels, trailing whitespace, and lines that look like diff syntax.
ALPHABET = [
    "def f(x):",
    "    x = 1",
    "    return x",
    "        pass",
    "x = 1",
    "",
    "    ",
    "a",
    "b",
    "c  ",
    "-- a",
    "++ b",
    "@@ c",
    "# é ü 🐍",
]

HUNK_HEADER = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@(.*)$")


@st.composite
def file_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """(old, new): a random file and an edited copy, with LF or CRLF and optional final newline."""
    old_lines = draw(st.lists(st.sampled_from(ALPHABET), max_size=25))
    new_lines = list(old_lines)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        position = draw(st.integers(0, len(new_lines)))
        if op == "insert" or not new_lines:
            new_lines[position:position] = draw(st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=3))
        elif op == "replace":
            position = min(position, len(new_lines) - 1)
            new_lines[position] = draw(st.sampled_from(ALPHABET))
        else:
            position = min(position, len(new_lines) - 1)
            del new_lines[position : position + draw(st.integers(1, 3))]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    old = ending.join(old_lines) + (ending if old_lines and draw(st.booleans()) else "")
    new = ending.join(new_lines) + (ending if new_lines and draw(st.booleans()) else "")
    return old, new


def whole_file(text: str) -> list[tuple[int, int]]:
    lines = len(re.findall(r"\r\n|\r|\n", text)) + (0 if not text or text.endswith(("\n", "\r")) else 1)
    return [(0, lines - 1)] if lines else [(0, -1)]


def _body_lines(diff: str) -> list[tuple[int, str]]:
    """(index, line) of hunk body lines (not headers, hunk headers or markers)."""
    out = []
    in_hunk = False
    for index, line in enumerate(diff.split("\n")):
        if line.startswith("@@"):
            in_hunk = True
            continue
        if in_hunk and line[:1] in (" ", "+", "-"):
            out.append((index, line))
    return out


def shift_numbers(diff: str, by: int) -> str:
    def shift(match: re.Match[str]) -> str:
        old, new = max(int(match.group(1)) + by, 0), max(int(match.group(3)) + by, 0)
        return f"@@ -{old}{match.group(2) or ''} +{new}{match.group(4) or ''} @@{match.group(5)}"

    return "\n".join(HUNK_HEADER.sub(shift, line) for line in diff.split("\n"))


def drop_headers(diff: str) -> str:
    lines = diff.split("\n")
    return "\n".join(lines[2:])  # unified_diff always starts with the two file headers


def drop_numbers(diff: str) -> str:
    return "\n".join("@@ @@" if HUNK_HEADER.match(line) else line for line in diff.split("\n"))


def strip_trailing_whitespace(diff: str) -> str:
    """What a model does to the lines it copies: context and removed lines lose trailing blanks."""
    lines = diff.split("\n")
    for index, line in _body_lines(diff):
        if line[0] in (" ", "-"):
            ending = "\r" if line.endswith("\r") else ""
            lines[index] = line[0] + line[1:].rstrip(" \t\r") + ending
    return "\n".join(lines)


def reindent(diff: str, how: str) -> str:
    """Change every hunk line's indentation: halve, tabs, indent (3 more spaces) or dedent."""
    lines = diff.split("\n")
    body = _body_lines(diff)
    widths = [len(line[1:]) - len(line[1:].lstrip(" ")) for _, line in body if line[1:].strip()]
    smallest = min(widths) if widths else 0
    for index, line in body:
        text = line[1:]
        width = len(text) - len(text.lstrip(" "))
        if not text.strip():
            continue
        if how == "halve":
            indent = " " * (width // 2)
        elif how == "indent":
            indent = " " * (width + 3)
        elif how == "tabs":
            indent = "\t" * (width // 4) + " " * (width % 4)
        else:
            indent = " " * (width - smallest)
        lines[index] = line[0] + indent + text.lstrip(" ")
    return "\n".join(lines)


def indentation_pinned(diff: str) -> bool:
    """Does every hunk's old side show how indentation maps? (At least two levels, or added
    lines only at levels the old side has.) Without that, a re-indented hunk is a different
    intent, not a damaged copy."""
    hunks: list[tuple[set[int], set[int]]] = []
    for line in diff.split("\n"):
        if line.startswith("@@"):
            hunks.append((set(), set()))
        elif hunks and line[:1] in (" ", "-", "+") and line[1:].strip():
            width = len(line[1:]) - len(line[1:].lstrip(" "))
            hunks[-1][1 if line[0] == "+" else 0].add(width)
    return all(len(old) >= 2 or added <= old for old, added in hunks)


def random_pair(rng: random.Random) -> tuple[str, str]:
    """Like :func:`file_pairs`, from a seeded ``random.Random`` (for rate assertions that need
    a fixed, counted sample rather than a search for counterexamples)."""
    old_lines = [rng.choice(ALPHABET) for _ in range(rng.randrange(1, 26))]
    new_lines = list(old_lines)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["replace", "insert", "delete"])
        position = rng.randint(0, len(new_lines))
        if op == "insert" or not new_lines:
            new_lines[position:position] = [rng.choice(ALPHABET) for _ in range(rng.randint(1, 3))]
        elif op == "replace":
            position = min(position, len(new_lines) - 1)
            new_lines[position] = rng.choice(ALPHABET)
        else:
            position = min(position, len(new_lines) - 1)
            del new_lines[position : position + rng.randint(1, 3)]
    ending = rng.choice(["\n", "\r\n"])
    old = ending.join(old_lines) + (ending if rng.random() < 0.5 else "")
    new = ending.join(new_lines) + (ending if new_lines and rng.random() < 0.5 else "")
    return old, new
