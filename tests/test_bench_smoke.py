"""Every benchmark entry (bench/bench_*.py, discovered, so entries added later are covered too) runs
to completion in its tiny configuration and produces a well-formed result, so a crash (a missing
dependency, a changed API) fails CI instead of the next `python -m bench`. Speed is not asserted
here: the targets live in the benchmarks."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.__main__ import available, main, render, run_entry

ENTRIES = available()


def test_entries_are_discovered() -> None:
    names = {p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py")}
    assert names and set(ENTRIES) == names
    assert {"transport", "local"} <= names


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ENTRIES)
def test_entry_runs_in_its_tiny_configuration(name: str) -> None:
    module = importlib.import_module(f"bench.bench_{name}")
    assert isinstance(module.TITLE, str) and module.TITLE
    result = run_entry(module, quick=True, tiny=True)
    if result.get("skipped"):
        # An entry may only skip by saying why (e.g. the embedded model is not installed).
        assert isinstance(result["skipped"], str) and result["skipped"].strip()
        pytest.skip(f"bench {name} skipped itself: {result['skipped']}")
    assert isinstance(result.get("rows"), list) and result["rows"], "no rows measured"
    for row in result["rows"]:
        assert isinstance(row, dict) and row
    for target in result.get("targets", []):
        assert (
            2 <= len(target) <= 3
            and isinstance(target[0], str)
            and isinstance(target[1], bool)
        )
    text = render(name, module.TITLE, result, 0.0)
    assert text.startswith(f"## {name}: ")


def test_results_file_has_target_measured_and_verdict(tmp_path: Path) -> None:
    """The writer keeps other sections and renders targets as target | measured | result rows."""
    out = tmp_path / "RESULTS.md"
    out.write_text("# old\n\n## other: kept section\n\n- a note\n\n")
    assert main(["transport", "--tiny", "--output", str(out)]) == 0
    text = out.read_text()
    assert "## other: kept section" in text and "## transport: " in text
    assert "| target | measured | result |" in text
    target_lines = [
        line
        for line in text.splitlines()
        if line.startswith("| spark-ls WebSocket round trip within")
    ]
    assert len(target_lines) == 4
    for line in target_lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert (
            cells[1].endswith(")") and "x (" in cells[1]
        )  # the measured ratio with its medians
        assert cells[2] in ("**pass**", "**FAIL**")


def test_a_failing_entry_is_reported_and_the_others_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bench.__main__ as runner

    broken = type(sys)("bench.bench_broken")
    broken.TITLE = "a broken entry"

    def explode(quick: bool) -> dict:
        raise ModuleNotFoundError("No module named 'cryptography'")

    broken.run = explode
    monkeypatch.setitem(sys.modules, "bench.bench_broken", broken)
    monkeypatch.setattr(runner, "available", lambda: ["broken", "transport"])
    out = tmp_path / "RESULTS.md"
    assert main(["broken", "transport", "--tiny", "--no-write"]) == 1
    assert not out.exists()
    assert main(["broken", "transport", "--tiny", "--output", str(out)]) == 1
    text = out.read_text()
    assert (
        "## broken: a broken entry" in text
        and "the benchmark failed" in text
        and "cryptography" in text
    )
    assert "## transport: " in text
