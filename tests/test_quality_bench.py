"""The quality benchmark's own bookkeeping (bench/bench_quality.py), end to end through the real
`spark-ls check --verify` path against the fake endpoint: a fix is counted as fixed, a breaking
"fix" of a correct function as a false alarm with damage that --verify drops, NO CHANGE as no
proposal. (The figures themselves come from `python -m bench quality` with a real model.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint

REPO_ROOT = Path(__file__).resolve().parent.parent


def _scripted(body: dict[str, Any]) -> str:
    text = json.dumps(body)
    source = re.search(r"```python\\n(def .*?)```", text)
    assert source is not None, text[:500]
    code = json.loads(f'"{source.group(1)}"')
    if "def isleap" in code:
        if "year % 4 != 0" in code:  # the mutant: fix it
            return "```python\n" + code.replace("year % 4 != 0", "year % 4 == 0") + "```\n"
        return "```python\ndef isleap(year):\n    return year % 4 == 0\n```\n"  # the original: break it
    return "NO CHANGE"


def test_outcomes_are_counted_as_the_tests_say(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    from bench import bench_quality

    log = tmp_path / "log.jsonl"
    with ModelEndpoint(api_key=TEST_API_KEY, reply_for=_scripted) as ep:
        for name, value in {"OPENAI_BASE_URL": ep.base_url, "OPENAI_API_KEY": TEST_API_KEY,
                            "SPARK_LS_EDIT_FORMAT": "scope", "SPARK_LS_BENCH_QUALITY_LOG": str(log),
                            "SPARK_LS_BENCH_QUALITY_ONLY": "calendar_isleap,datetime_cmp"}.items():
            monkeypatch.setenv(name, value)
        result = bench_quality.run(quick=False)
    assert result["outcomes"] == {
        "originals": {"calendar_isleap": "dropped by --verify", "datetime_cmp": "no proposal"},
        "mutants": {"calendar_isleap": "fixed", "datetime_cmp": "no proposal"},
    }
    plain, verified = result["rows"]
    assert (plain["fixed"], plain["fix rate %"], plain["false alarms %"], plain["damage %"]) == (1, 50.0, 50.0, 50.0)
    assert (verified["fixed"], verified["false alarms %"], verified["damage %"]) == (1, 0.0, 0.0)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 4 and all(e["outcome"] for e in entries)
