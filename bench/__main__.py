"""Run the benchmarks (``bench/bench_*.py``, discovered) and write bench/RESULTS.md.

Each entry has ``TITLE`` and ``run(quick: bool[, tiny: bool]) -> {"rows", "targets", "notes"}``;
a target is ``(description, met)`` or ``(description, met, measured)``. ``--tiny`` is the smoke
configuration tests/test_bench_smoke.py runs (entries without a ``tiny`` parameter get
``quick=True``); an entry that cannot run returns ``{"skipped": reason}`` (shown, never silent).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import inspect
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def run_entry(module: ModuleType, *, quick: bool, tiny: bool = False) -> dict[str, Any]:
    """Call one entry's ``run``: ``tiny`` only where the entry supports it (else quick)."""
    if tiny and "tiny" in inspect.signature(module.run).parameters:
        return dict(module.run(quick=True, tiny=True))
    return dict(module.run(quick=quick or tiny))


def render(name: str, title: str, result: dict, seconds: float) -> str:
    rows = result.get("rows", [])
    lines = [f"## {name}: {title}", ""]
    if result.get("skipped"):
        lines.append(f"- **skipped**: {result['skipped']}")
    if result.get("error"):
        lines += [
            "- **the benchmark failed**:",
            "",
            "```",
            str(result["error"]).rstrip(),
            "```",
            "",
        ]
    if rows:
        cols: list[str] = []
        for row in rows:
            cols += [c for c in row if c not in cols]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for row in rows:
            lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |")
        lines.append("")
    targets = result.get("targets", [])
    if targets:
        lines += ["| target | measured | result |", "|---|---|---|"]
        for target in targets:
            description, met = target[0], target[1]
            measured = _fmt(target[2]) if len(target) > 2 else "see rows"
            lines.append(
                f"| {description} | {measured} | {'**pass**' if met else '**FAIL**'} |"
            )
        lines.append("")
    for note in result.get("notes", []):
        lines.append(f"- {note}")
    lines.append(f"- (ran in {seconds:.1f} s)")
    lines.append("")
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run (default: all of {', '.join(available())})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer iterations (for a smoke run)"
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="smallest configuration (the CI smoke test); not written to bench/RESULTS.md",
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="print only; do not rewrite bench/RESULTS.md",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="results file (default: bench/RESULTS.md; --tiny writes only here)",
    )
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}"
        )
    sections = []
    failed = []
    for name in names:
        started = time.perf_counter()
        title = name
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            title = module.TITLE
            result = run_entry(module, quick=args.quick, tiny=args.tiny)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one broken entry must not lose the others' results
            failed.append(name)
            detail = traceback.format_exc() if isinstance(exc, Exception) else str(exc)
            result = {"error": detail}
        section = render(name, title, result, time.perf_counter() - started)
        print(section, flush=True)
        sections.append((name, section))
    if not args.no_write and (args.output is not None or not args.tiny):
        _write(sections, args.output or HERE / "RESULTS.md")
    if failed:
        print(f"python -m bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _write(sections: list[tuple[str, str]], path: Path) -> None:
    """Replace the named sections in the results file, keep the others."""
    existing: dict[str, str] = {}
    if path.exists():
        current = None
        for line in path.read_text().splitlines(keepends=True):
            if line.startswith("## "):
                current = line[3:].split(":", 1)[0].strip()
                existing[current] = ""
            if current:
                existing[current] += line
    for name, section in sections:
        existing[name] = section + "\n"
    header = (
        "# spark-ls benchmark results\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
        f"updated {_dt.date.today().isoformat()}. Regenerate: `python -m bench [NAME ...]` "
        "(install: `pip install '.[local]'` then `pip install '.[bench]'`).\n\n"
    )
    path.write_text(header + "".join(existing[k] for k in sorted(existing)))


if __name__ == "__main__":
    sys.exit(main())
