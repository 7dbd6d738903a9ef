"""`--fix` writes: atomic per file, encoding / line endings / mode kept, never outside the roots."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spark_ls.check import fixwrite
from spark_ls.check.fixwrite import FixRefused, PendingWrite, write_atomically

OLD = {"a.py": b"\xef\xbb\xbfx = 1\r\n", "b.py": b"y = 2\n", "c.py": b"z = 3\n"}
NEW = {"a.py": b"\xef\xbb\xbfx = 10\r\n", "b.py": b"y = 20\n", "c.py": b"z = 30\n"}


def _files(tmp_path: Path) -> list[PendingWrite]:
    writes = []
    for name, data in OLD.items():
        path = tmp_path / name
        path.write_bytes(data)
        writes.append(PendingWrite(path=path, data=NEW[name], expected=data))
    return writes


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".spark-ls-fix-")]


def test_writes_all_files_and_keeps_mode(tmp_path: Path) -> None:
    writes = _files(tmp_path)
    os.chmod(tmp_path / "b.py", 0o751)
    written = write_atomically(writes, roots=[tmp_path])
    assert [p.name for p in written] == ["a.py", "b.py", "c.py"]
    for name, data in NEW.items():
        assert (tmp_path / name).read_bytes() == data
    assert stat.S_IMODE((tmp_path / "b.py").stat().st_mode) == 0o751
    assert _leftovers(tmp_path) == []


def test_symlink_inside_roots_writes_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.py"
    real.write_bytes(b"a = 1\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    write_atomically([PendingWrite(path=link, data=b"a = 2\n", expected=b"a = 1\n")], roots=[tmp_path])
    assert link.is_symlink() and real.read_bytes() == b"a = 2\n"


def test_target_outside_roots_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    inside = tmp_path / "root"
    inside.mkdir()
    writes = _files(inside)
    outside = tmp_path / "outside.py"
    outside.write_bytes(b"secret = 1\n")
    escape = inside / "escape.py"
    escape.symlink_to(outside)
    writes.append(PendingWrite(path=escape, data=b"secret = 2\n", expected=b"secret = 1\n"))
    with pytest.raises(FixRefused, match="outside"):
        write_atomically(writes, roots=[inside])
    assert outside.read_bytes() == b"secret = 1\n"
    for name, data in OLD.items():
        assert (inside / name).read_bytes() == data
    assert _leftovers(inside) == []


def test_file_changed_since_read_is_not_overwritten(tmp_path: Path) -> None:
    writes = _files(tmp_path)
    (tmp_path / "c.py").write_bytes(b"z = 'edited by a human'\n")
    with pytest.raises(FixRefused, match="changed on disk"):
        write_atomically(writes, roots=[tmp_path])
    assert (tmp_path / "a.py").read_bytes() == OLD["a.py"]


def test_failure_between_files_leaves_each_file_old_or_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = _files(tmp_path)
    real_replace = os.replace
    calls = []

    def failing_replace(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(fixwrite.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_atomically(writes, roots=[tmp_path])
    assert (tmp_path / "a.py").read_bytes() == NEW["a.py"]
    assert (tmp_path / "b.py").read_bytes() == OLD["b.py"]
    assert (tmp_path / "c.py").read_bytes() == OLD["c.py"]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("kill_at", ["write", "replace"])
def test_sigkill_mid_write_leaves_each_file_old_or_new(tmp_path: Path, kill_at: str) -> None:
    """A real SIGKILL, delivered while temporaries are being written or between two renames."""
    for name, data in OLD.items():
        (tmp_path / name).write_bytes(data)
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from spark_ls.check import fixwrite
        root = Path({str(tmp_path)!r})
        old = {OLD!r}
        new = {NEW!r}
        kill_at = {kill_at!r}
        real_replace, real_fsync = os.replace, os.fsync
        count = {{"replace": 0, "write": 0}}
        def replace(src, dst):
            count["replace"] += 1
            if kill_at == "replace" and count["replace"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst)
        def fsync(fd):
            count["write"] += 1
            if kill_at == "write" and count["write"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            real_fsync(fd)
        fixwrite.os.replace = replace
        fixwrite.os.fsync = fsync
        writes = [fixwrite.PendingWrite(root / n, new[n], old[n]) for n in sorted(old)]
        fixwrite.write_atomically(writes, roots=[root])
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent, check=False)
    assert result.returncode == -signal.SIGKILL
    states = {name: (tmp_path / name).read_bytes() for name in OLD}
    for name, data in states.items():
        assert data in (OLD[name], NEW[name]), name
    if kill_at == "write":
        assert states == OLD  # nothing is renamed before every temporary is complete
    else:
        assert states["a.py"] == NEW["a.py"] and states["b.py"] == OLD["b.py"]
