"""`--fix`: write new file contents in place, atomically, file by file.

Every new content is first written and fsync'ed to a temporary file in the target's own directory
(same filesystem, so the final rename is atomic), with the original's permission bits. Only when
all of them are ready are they renamed over the originals with os.replace. A run that dies at any
point therefore leaves each file either entirely old or entirely new; an exception cleans up the
temporaries it had made.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_TEMP_PREFIX = ".spark-ls-fix-"


class FixRefused(Exception):
    """A write that would land outside the checked paths (or on something not a regular file)."""


@dataclass(frozen=True)
class PendingWrite:
    path: Path  # resolved target
    data: bytes  # encoded content (BOM and line endings already as in the original)
    expected: bytes  # what the file held when it was read; a changed file is not overwritten


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def write_atomically(writes: Sequence[PendingWrite], *, roots: Sequence[Path]) -> list[Path]:
    """Replace each file's content; returns the paths written. Raises before touching anything
    if a target escapes ``roots`` (symlinks resolved) or changed on disk since it was read."""
    real_roots = [Path(root).resolve() for root in roots]
    prepared: list[tuple[Path, Path]] = []
    try:
        for write in writes:
            target = Path(write.path).resolve()
            if not _inside(target, real_roots):
                raise FixRefused(f"{write.path}: resolves outside the checked paths; not written")
            info = target.lstat()
            if not stat.S_ISREG(info.st_mode):
                raise FixRefused(f"{target}: not a regular file; not written")
            if target.read_bytes() != write.expected:
                raise FixRefused(f"{target}: changed on disk while spark-ls was running; not written")
            fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=target.parent)
            temp = Path(temp_name)
            prepared.append((temp, target))
            with os.fdopen(fd, "wb") as fh:
                fh.write(write.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(temp, stat.S_IMODE(info.st_mode))
        written: list[Path] = []
        for temp, target in prepared:
            os.replace(temp, target)
            written.append(target)
        _fsync_directories({target.parent for _, target in prepared})
        return written
    finally:
        for temp, _ in prepared:
            if temp.exists():
                temp.unlink(missing_ok=True)


def _fsync_directories(directories: set[Path]) -> None:
    # Makes the renames themselves durable; not supported everywhere, and harmless to skip.
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
