"""Read a unified diff out of a model's reply, forgiving the usual model flaws.

Models wrap diffs in fences, add prose, drop the ``---``/``+++`` headers, write ``@@ @@`` or
wrong line numbers and counts, and lose the leading space of blank context lines. This module
finds the diff, segments it into files and hunks with those flaws in mind, rewrites each file's
part into a canonical patch (headers present, counts recomputed) and parses that with
``unidiff``. Line numbers that survive are kept only as placement *hints*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import unidiff.errors
import unidiff.patch

from spark_ls.diffs.errors import PatchRefused

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)[^`]*$")
_HUNK_HEADER = re.compile(r"^@@+(?P<ranges>[^@]*)@@+(?P<section>.*)$|^@@+[ \t]*$")
_OLD_RANGE = re.compile(r"-(\d+)(?:,(\d+))?")
_NEW_RANGE = re.compile(r"\+(\d+)(?:,(\d+))?")
_GIT_HEADER = re.compile(r'^diff --git "?(?:a/)?(?P<source>.+?)"? "?(?:b/)?(?P<target>[^"]+)"?$')
_TIMESTAMP = re.compile(r"\s+\d{4}-\d\d-\d\d[ T]\d\d:\d\d.*$")
DIFF_FENCE_INFO = frozenset({"diff", "patch", "udiff"})
# git's extended header lines; the ones in _REFUSED_META describe changes the engine never makes.
_GIT_META = re.compile(
    r"^(index |old mode |new mode |similarity index |dissimilarity index |rename from |rename to |"
    r"copy from |copy to |new file mode |deleted file mode |Binary files |GIT binary patch)"
)
_REFUSED_META = {
    "rename from ": "renames a file",
    "rename to ": "renames a file",
    "copy from ": "copies a file",
    "copy to ": "copies a file",
    "new file mode ": "creates a file",
    "deleted file mode ": "deletes a file",
    "Binary files ": "changes a binary file",
    "GIT binary patch": "changes a binary file",
}


@dataclass(frozen=True)
class HunkLine:
    kind: str  # " " context, "-" removed, "+" added
    text: str  # without line ending
    ending: str | None = None  # "\r\n" when the diff line carried its own CR; None: the file's
    no_newline: bool = False  # followed by "\ No newline at end of file"


@dataclass(frozen=True)
class Hunk:
    number: int  # 1-based, in reply order across all files
    old_start: int | None  # as stated (1-based); None when the header had no numbers
    lines: tuple[HunkLine, ...]

    @property
    def old_side(self) -> list[str]:
        """Context and removed lines: what must be found in the file."""
        return [line.text for line in self.lines if line.kind != "+"]

    @property
    def new_side(self) -> list[str]:
        return [line.text for line in self.lines if line.kind != "-"]

    @property
    def changes(self) -> bool:
        return any(line.kind != " " for line in self.lines)

    @property
    def hint(self) -> int | None:
        """0-based line where the old side starts, going by the header (a hint, not a fact)."""
        if self.old_start is None:
            return None
        if not self.old_side:  # "-N,0" means "after line N"
            return self.old_start
        return max(self.old_start - 1, 0)


@dataclass
class FileDiff:
    source: str | None = None  # path from the "---" (or "diff --git") header
    target: str | None = None  # path from the "+++" header
    hunks: list[Hunk] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # git metadata the engine will not honour
    has_header: bool = False


@dataclass(frozen=True)
class _Item:
    text: str
    block: int  # which fenced block (or -1 for unfenced text); a hunk never spans blocks
    fenced: bool


def fenced_blocks(lines: list[str]) -> list[tuple[str, list[str]]]:
    """(info string, body lines) of each Markdown fenced block; the closing fence must sit at
    the opening fence's indentation (so a diff's " ```" context line does not close it)."""
    blocks: list[tuple[str, list[str]]] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = lines[index]
            if (
                closing.startswith(indent + fence[0] * len(fence))
                and not closing[len(indent):].strip(fence[0]).strip()
                and not closing[len(indent)].isspace()
            ):
                break
            body.append(closing)
            index += 1
        blocks.append((opening.group("info").lower(), body))
        index += 1
    return blocks


def _looks_like_diff(lines: list[str]) -> bool:
    for index, line in enumerate(lines):
        if _HUNK_HEADER.match(line):
            return True
        if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            return True
    return False


def reply_lines(reply: str) -> list[str]:
    """The reply's lines; a reply sent entirely with CRLF is read as plain LF."""
    text = reply
    if "\r\n" in text and text.count("\r\n") == text.count("\n"):
        text = text.replace("\r\n", "\n")
    return text.split("\n")


def _diff_items(reply: str) -> list[_Item]:
    lines = reply_lines(reply)
    blocks = [(info, body) for info, body in fenced_blocks(lines) if info in DIFF_FENCE_INFO or _looks_like_diff(body)]
    if blocks:
        return [_Item(text, number, True) for number, (_, body) in enumerate(blocks) for text in body]
    return [_Item(text, -1, False) for text in lines]


def _is_file_header(items: list[_Item], index: int) -> bool:
    return (
        items[index].text.startswith("--- ")
        and index + 1 < len(items)
        and items[index + 1].block == items[index].block
        and items[index + 1].text.startswith("+++ ")
    )


def _is_blank(text: str) -> bool:
    return text.rstrip("\r") == ""


def _body_line_kind(text: str) -> str | None:
    if _is_blank(text):
        return " "
    first = text[0]
    return first if first in " +-\\" else None


def _read_counted(items: list[_Item], start: int, old_count: int, new_count: int) -> tuple[list[str], int] | None:
    """The hunk body if the header's counts fit it exactly (git's own output), else None."""
    block = items[start - 1].block
    body: list[str] = []
    index, old_seen, new_seen = start, 0, 0
    while (old_seen < old_count or new_seen < new_count) and index < len(items) and items[index].block == block:
        text = items[index].text
        kind = _body_line_kind(text)
        if kind is None:
            return None
        old_seen += kind in " -"
        new_seen += kind in " +"
        body.append(text)
        index += 1
    if old_seen != old_count or new_seen != new_count:
        return None
    while index < len(items) and items[index].block == block and items[index].text.startswith("\\"):
        body.append(items[index].text)
        index += 1
    # More diff-looking lines straight after: the counts were wrong, read by shape instead.
    if index < len(items) and items[index].block == block:
        following = items[index].text
        if following[:1] in (" ", "+", "-") and not _is_file_header(items, index) and not following.startswith("+++ "):
            return None
    return body, index


def _read_by_shape(items: list[_Item], start: int, number: int) -> tuple[list[str], int]:
    block = items[start - 1].block
    body: list[str] = []
    index = start
    while index < len(items) and items[index].block == block:
        item = items[index]
        text = item.text
        if _HUNK_HEADER.match(text) or text.startswith("diff --git ") or _is_file_header(items, index):
            break
        if _body_line_kind(text) is not None:
            body.append(text)
            index += 1
            continue
        if item.fenced:
            # Inside a diff block an unprefixed line is a context line that lost its space;
            # placement will refuse it if the file does not have it.
            body.append(" " + text)
            index += 1
            continue
        # Prose ends the diff, unless diff lines carry on right after it (then it is a
        # context line that lost its prefix, and guessing would risk a partial edit).
        after_blank = not body or body[-1] == ""
        if not after_blank and index + 1 < len(items) and items[index + 1].block == block:
            following = items[index + 1].text
            if following[:1] in ("+", "-", " ") and following.strip() and not _is_file_header(items, index + 1):
                raise PatchRefused(
                    f"hunk {number}: the line {text.strip()[:60]!r} has no diff prefix (' ', '+' or '-')",
                    hunk=number,
                )
        break
    while body and _is_blank(body[-1]):
        body.pop()  # blank lines after a hunk separate it from prose; dropping context is safe
    return body, index


def _clean_path(raw: str) -> str:
    path = raw.split("\t", 1)[0].strip()
    path = _TIMESTAMP.sub("", path)
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return path


def _segment(reply: str) -> list[tuple[FileDiff, list[tuple[int, int | None, list[str]]]]]:
    """Files, each with its raw hunks (number, stated old start, body lines)."""
    items = _diff_items(reply)
    files: list[tuple[FileDiff, list[tuple[int, int | None, list[str]]]]] = []
    current: tuple[FileDiff, list[tuple[int, int | None, list[str]]]] | None = None
    number = 0
    index = 0
    while index < len(items):
        text = items[index].text
        if text.startswith("diff --git "):
            current = (FileDiff(), [])
            files.append(current)
            git = _GIT_HEADER.match(text)
            if git:
                current[0].source, current[0].target = git.group("source"), git.group("target")
            index += 1
            continue
        if _is_file_header(items, index):
            if current is None or current[0].has_header or current[1]:
                current = (FileDiff(), [])
                files.append(current)
            current[0].source = _clean_path(text[4:])
            current[0].target = _clean_path(items[index + 1].text[4:])
            current[0].has_header = True
            index += 2
            continue
        if text.startswith(("--- ", "+++ ")):
            # A lone header line (the model wrote only one of the pair): still a path to check.
            if current is None or current[1] or (text[0] == "-" and current[0].source is not None):
                current = (FileDiff(), [])
                files.append(current)
            if text[0] == "-":
                current[0].source = _clean_path(text[4:])
            else:
                current[0].target = _clean_path(text[4:])
            index += 1
            continue
        meta = _GIT_META.match(text)
        if meta and current is not None and not current[1]:
            for prefix, why in _REFUSED_META.items():
                if text.startswith(prefix):
                    current[0].refusals.append(why)
            index += 1
            continue
        header = _HUNK_HEADER.match(text)
        if not header:
            index += 1  # prose
            continue
        number += 1
        if current is None:
            current = (FileDiff(), [])
            files.append(current)
        ranges = header.group("ranges") or ""
        old_range, new_range = _OLD_RANGE.search(ranges), _NEW_RANGE.search(ranges)
        old_start = int(old_range.group(1)) if old_range else None
        counted = None
        if old_range and new_range:
            old_count = int(old_range.group(2)) if old_range.group(2) is not None else 1
            new_count = int(new_range.group(2)) if new_range.group(2) is not None else 1
            counted = _read_counted(items, index + 1, old_count, new_count)
        body, index = counted if counted is not None else _read_by_shape(items, index + 1, number)
        current[1].append((number, old_start, body))
    return files


def _canonical_patch(raw_hunks: list[tuple[int, int | None, list[str]]]) -> list[str]:
    """One file's hunks as a patch unidiff accepts: headers present, counts recomputed."""
    out = ["--- a/document\n", "+++ b/document\n"]
    for _, old_start, body in raw_hunks:
        lines = [" " + text if _is_blank(text) else text for text in body]
        old_count = sum(1 for text in lines if text[0] in " -")
        new_count = sum(1 for text in lines if text[0] in " +")
        start = old_start if old_start is not None else (1 if old_count else 0)
        if old_count and start == 0:
            start = 1
        out.append(f"@@ -{start},{old_count} +{start},{new_count} @@\n")
        out.extend(text + "\n" for text in lines)
    return out


def _hunk_lines(hunk: unidiff.patch.Hunk) -> tuple[HunkLine, ...]:
    lines: list[HunkLine] = []
    for line in hunk:
        value = line.value.removesuffix("\n")
        if line.line_type == "\\":
            if lines:
                lines[-1] = HunkLine(lines[-1].kind, lines[-1].text, lines[-1].ending, True)
            continue
        ending = None
        if value.endswith("\r"):
            value, ending = value[:-1], "\r\n"
        lines.append(HunkLine(line.line_type, value, ending))
    return tuple(lines)


def parse_diff(reply: str) -> list[FileDiff]:
    """The files and hunks of the diff in ``reply`` (possibly none). Raises PatchRefused when
    the diff's shape makes any reading a guess."""
    files: list[FileDiff] = []
    for file_diff, raw_hunks in _segment(reply):
        if raw_hunks:
            try:
                patch = unidiff.patch.PatchSet(_canonical_patch(raw_hunks))
            except unidiff.errors.UnidiffParseError as exc:
                first = raw_hunks[0][0]
                raise PatchRefused(f"hunk {first}: not a readable unified diff ({exc})", hunk=first) from None
            parsed = list(patch[0]) if len(patch) else []
            if len(parsed) != len(raw_hunks):
                first = raw_hunks[0][0]
                raise PatchRefused(f"hunk {first}: not a readable unified diff", hunk=first)
            for (number, old_start, _), hunk in zip(raw_hunks, parsed):
                file_diff.hunks.append(Hunk(number, old_start, _hunk_lines(hunk)))
        files.append(file_diff)
    return files


_PREFIXES = re.compile(r"[abciow12]")


def _components(path: str) -> list[str]:
    path = path.removeprefix("file://").replace("\\", "/")
    return [part for part in path.split("/") if part not in ("", ".")]


def names_document(header_path: str, document_path: str) -> bool:
    """Does a diff header's path name the document?

    Yes when (with or without git's ``a/``/``b/`` prefix) it is a trailing part of the
    document's path (``b/x.py``, ``src/x.py``) or the document's path is a trailing part of it
    (``/abs/project/src/x.py`` for ``src/x.py``). Never with ``..`` components or a different
    file name.
    """
    header = _components(header_path)
    document = _components(document_path)
    if not header or not document or ".." in header or header[-1] != document[-1]:
        return False
    candidates = [header]
    if len(header) > 1 and _PREFIXES.fullmatch(header[0]) and not header_path.startswith("/"):
        candidates.append(header[1:])
    for candidate in candidates:
        if document[-len(candidate):] == candidate:
            return True
        if candidate[-len(document):] == document:
            return True
    return False


def has_diff(reply: str) -> bool:
    """Does the reply hold at least one hunk header?"""
    return any(_HUNK_HEADER.match(item.text) for item in _diff_items(reply))
