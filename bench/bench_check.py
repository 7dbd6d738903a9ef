"""`spark-ls check` throughput: files per second over real files (a sample of the Python standard
library) against the fake model endpoint with a fixed 100 ms per request, at --jobs 1, 4 and 16.

The check runs as a real subprocess (`python -m spark_ls check --format json`) so the client and
the endpoint do not share an interpreter. Every request is answered with an empty reply ("no
change"), so the figures measure the pipeline and its concurrency, not diff placement. The ideal
line is latency-bound: ceil(requests / jobs) x 100 ms; "% of ideal" is ideal time / wall time.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

TITLE = "spark-ls check: files/s over stdlib files, 100 ms model latency, --jobs 1/4/16"
LATENCY = 0.100
REPO_ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-bench-not-a-real-key"


def _corpus(destination: Path, *, max_functions: int) -> tuple[int, int]:
    """Copy stdlib modules (sorted by name, for a stable sample) until about ``max_functions``
    top-level function/method definitions are collected. Returns (files, functions estimate)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = functions = 0
    for source in sorted(stdlib.glob("*.py")):
        try:
            text = source.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        count = len(re.findall(r"^\s*(?:async\s+)?def ", text, re.MULTILINE))
        if count == 0 or count > 40 or len(text) > 60_000:
            continue
        shutil.copy(source, destination / source.name)
        files += 1
        functions += count
        if functions >= max_functions:
            break
    return files, functions


def _run_check(corpus: Path, base_url: str, jobs: int) -> tuple[float, int, str]:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("OPENAI_BASE_URL", None)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "spark_ls", "check", ".", "--format", "json", "--quiet",
         "--jobs", str(jobs), "--base-url", base_url, "--transport", "ws"],
        cwd=corpus, env=env, capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - started
    if out.returncode not in (0, 1):
        raise RuntimeError(f"check failed ({out.returncode}): {out.stderr[-2000:]}")
    import json

    summary = json.loads(out.stdout)["summary"]
    return wall, int(summary["requests"]), out.stderr.strip().splitlines()[-1]


def _startup_seconds(corpus: Path) -> float:
    """Interpreter + import + planning time with nothing to ask (an action that applies nowhere)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    subprocess.run(check=False, args=[sys.executable, "-m", "spark_ls", "check", ".", "--quiet", "--language", "go"],
                   cwd=corpus, env=env, capture_output=True, text=True)
    return time.perf_counter() - started


def run(quick: bool, tiny: bool = False) -> dict:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from model_endpoint import ModelEndpoint

    rows = []
    notes = []
    with tempfile.TemporaryDirectory(prefix="spark-ls-bench-check-") as scratch:
        corpus = Path(scratch)
        files, _ = _corpus(corpus, max_functions=12 if tiny else 60 if quick else 240)
        startup = _startup_seconds(corpus)
        with ModelEndpoint(api_key=API_KEY, first_token_delay=LATENCY, reply_for=lambda body: "") as endpoint:
            baseline = None
            for jobs in (1, 4, 16):
                wall, requests, summary = _run_check(corpus, endpoint.base_url, jobs)
                ideal = math.ceil(requests / jobs) * LATENCY
                inside = float(re.search(r"([\d.]+)s$", summary).group(1))  # check's own elapsed
                if baseline is None:
                    baseline = wall
                rows.append({
                    "jobs": jobs,
                    "files": files,
                    "requests": requests,
                    "wall s": round(wall, 2),
                    "files/s": round(files / wall, 2),
                    "speed-up": round(baseline / wall, 2),
                    "ideal s": round(ideal, 2),
                    "% of ideal (wall)": round(100 * ideal / wall, 1),
                    "check s": inside,
                    "% of ideal (check s)": round(100 * min(ideal / inside, 1.0), 1),
                })
                notes.append(f"jobs {jobs}: {summary}")
    notes.append(f"process startup with nothing to ask: {startup:.2f} s (in wall s; not in check s)")
    notes.append("replies are empty (no change), so this measures pipeline + concurrency; 2-core machine")
    by_jobs = {row["jobs"]: row for row in rows}
    targets = [
        ("--jobs 4 at least 3x faster than --jobs 1", by_jobs[4]["speed-up"] >= 3.0),
        ("--jobs 16 at least 8x faster than --jobs 1", by_jobs[16]["speed-up"] >= 8.0),
        ("--jobs 1 within 80% of the latency-bound ideal (check's own time)",
         by_jobs[1]["% of ideal (check s)"] >= 80.0),
    ]
    return {"rows": rows, "notes": notes, "targets": targets}
