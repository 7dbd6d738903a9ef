"""Which files `spark-ls check` looks at, how they are read, and which lines changed.

Files come from git's own list (`git ls-files -co --exclude-standard`) when the path is inside a
work tree, so .gitignore is respected exactly as git sees it; outside a repository the directory is
walked and hidden directories are skipped. Text is decoded strictly as UTF-8 (an optional BOM is
remembered) and never newline-translated, so writing it back keeps the file byte-for-byte outside
the edited lines.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Checked prefix for NUL bytes: the same heuristic git uses to call a file binary.
_BINARY_SNIFF_BYTES = 8000


class CheckInputError(Exception):
    """Bad input to `spark-ls check` (a missing path, a git failure): exit code 2."""


@dataclass(frozen=True)
class SourceFile:
    """One file to check. ``rel_path`` is POSIX-style and relative to ``root``."""

    path: Path  # resolved, absolute
    rel_path: str
    root: Path


@dataclass(frozen=True)
class DecodedText:
    text: str
    has_bom: bool

    def encode(self, text: str | None = None) -> bytes:
        body = (self.text if text is None else text).encode("utf-8")
        return codecs.BOM_UTF8 + body if self.has_bom else body


class UnreadableFile(Exception):
    """A file that is skipped with a message (binary, invalid UTF-8, unreadable)."""


@dataclass
class FileSelection:
    files: list[SourceFile] = field(default_factory=list)
    # (path as given or found, reason) for files that were skipped with a message on stderr.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Resolved directories the files must stay inside (also the limit for --fix writes).
    roots: list[Path] = field(default_factory=list)


def git_toplevel(directory: Path) -> Path | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=directory, capture_output=True, text=True, check=False,
        )
    except FileNotFoundError:
        return None
    if out.returncode != 0:
        return None
    return Path(out.stdout.strip()).resolve()


def _git_listed_files(directory: Path) -> list[Path]:
    """Tracked plus untracked-but-not-ignored files under ``directory`` (git's view)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "-c", "-o", "--exclude-standard", "--", "."],
        cwd=directory, capture_output=True, check=False,
    )
    if out.returncode != 0:
        raise CheckInputError(f"git ls-files failed in {directory}: {out.stderr.decode(errors='replace').strip()}")
    names = sorted({n for n in out.stdout.decode("utf-8", errors="surrogateescape").split("\0") if n})
    return [directory / n for n in names]


def _walk_files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return found


def collect_files(paths: Iterable[str], *, root: Path) -> FileSelection:
    """Expand ``paths`` (files and directories) into checkable files, sorted by relative path.

    Only regular files whose real location (symlinks resolved) lies inside one of the given paths
    are kept; a symlink escaping them is skipped with a message, so `--fix` can never write
    outside what the user named.
    """
    selection = FileSelection()
    given = [Path(p) for p in paths] or [Path(".")]
    roots: list[Path] = []
    candidates: list[Path] = []
    for raw in given:
        if not raw.exists() and not raw.is_symlink():
            raise CheckInputError(f"{raw}: no such file or directory")
        absolute = Path(os.path.abspath(raw))
        real = absolute.resolve()
        # A named file's root is its directory, so a named symlink leading elsewhere is refused too.
        roots.append(real if real.is_dir() else absolute.parent.resolve())
        if real.is_dir():
            if git_toplevel(real) is not None:
                candidates.extend(_git_listed_files(real))
            else:
                candidates.extend(_walk_files(real))
        else:
            candidates.append(absolute)
    seen: set[Path] = set()
    for candidate in candidates:
        display = _display(candidate, root)
        real = candidate.resolve()
        if not any(real == r or r in real.parents for r in roots):
            selection.skipped.append((display, "symlink points outside the checked paths (refused)"))
            continue
        if not real.is_file():
            continue  # deleted-but-tracked files, sockets, dangling links
        if real in seen:
            continue
        seen.add(real)
        selection.files.append(SourceFile(path=real, rel_path=_display(real, root), root=root))
    selection.files.sort(key=lambda f: f.rel_path)
    selection.roots = roots
    return selection


def _display(path: Path, root: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        try:
            return absolute.resolve().relative_to(root).as_posix()
        except ValueError:
            return absolute.as_posix()


def read_source(path: Path) -> DecodedText:
    """Decode ``path`` as UTF-8 (with or without BOM), refusing binary and invalid files."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    if b"\0" in data[:_BINARY_SNIFF_BYTES]:
        raise UnreadableFile("binary file (contains NUL bytes)")
    has_bom = data.startswith(codecs.BOM_UTF8)
    body = data[len(codecs.BOM_UTF8):] if has_bom else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(codecs.BOM_UTF8) if has_bom else 0)
        raise UnreadableFile(f"not valid UTF-8 (byte {offset}: {exc.reason})") from None
    return DecodedText(text=text, has_bom=has_bom)


_LONE_LF = re.compile(r"(?<!\r)\n")


def match_line_endings(original: str, new: str) -> str:
    """Give lines a model wrote the file's own line ending when the file is consistently CRLF."""
    if "\r\n" in original and _LONE_LF.search(original) is None:
        return _LONE_LF.sub("\r\n", new)
    return new


def changed_lines(ref: str, root: Path, rel_paths: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """0-based inclusive line ranges of the working tree that differ from ``ref``.

    Compared against the merge base of ``ref`` and HEAD (what a pull request changed, not what
    the base branch changed since). A pure deletion marks the line after it, so the scope around
    the deleted code is still checked. Untracked files count as entirely changed.
    """
    from unidiff.patch import PatchSet  # local: only needed with --changed-since

    wanted = sorted(set(rel_paths))
    result: dict[str, list[tuple[int, int]]] = {}
    if not wanted:
        return result
    diff = _git(["diff", "--merge-base", ref, "-U0", "--no-color", "--no-ext-diff", "--relative",
                 "--", *wanted], root)
    for patched in PatchSet(diff):
        if patched.is_removed_file:
            continue
        ranges = result.setdefault(patched.path, [])
        for hunk in patched:
            if hunk.target_length > 0:
                start = hunk.target_start - 1
                ranges.append((start, start + hunk.target_length - 1))
            else:
                # @@ -a,n +c,0 @@: lines were deleted after new line c (1-based).
                line = max(hunk.target_start, 0)
                ranges.append((max(line - 1, 0), line))
    untracked = _git(["ls-files", "-z", "-o", "--exclude-standard", "--", *wanted], root)
    for name in untracked.split("\0"):
        if name:
            result[name] = [(0, 1 << 30)]
    return result


def _git(args: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise CheckInputError("git is not installed, but --changed-since needs it") from None
    if out.returncode != 0:
        message = out.stderr.decode("utf-8", errors="replace").strip()
        raise CheckInputError(f"git {args[0]} failed: {message}")
    return out.stdout.decode("utf-8", errors="surrogateescape")
