from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def render(name: str, title: str, result: dict, seconds: float) -> str:
    rows = result.get("rows", [])
    lines = [f"## {name}: {title}", ""]
    if rows:
        cols: list[str] = []
        for row in rows:
            cols += [c for c in row if c not in cols]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for row in rows:
            lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |")
        lines.append("")
    for description, met in result.get("targets", []):
        lines.append(f"- target: {description} — {'**met**' if met else '**not met**'}")
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
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not rewrite bench/RESULTS.md")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}")
    sections = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.perf_counter()
        result = module.run(quick=args.quick)
        section = render(name, module.TITLE, result, time.perf_counter() - started)
        print(section, flush=True)
        sections.append((name, section))
    if not args.no_write:
        _write(sections)
    return 0


def _write(sections: list[tuple[str, str]]) -> None:
    """Replace the named sections in RESULTS.md, keep the others."""
    path = HERE / "RESULTS.md"
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
        f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"updated {_dt.date.today().isoformat()}. Regenerate: `python -m bench [NAME ...]`.\n\n"
    )
    path.write_text(header + "".join(existing[k] for k in sorted(existing)))


if __name__ == "__main__":
    sys.exit(main())
