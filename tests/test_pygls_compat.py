"""spark-ls's overrides of pygls internals (server/pygls_compat.py) still fit the installed pygls.

If this fails after a pygls upgrade, read the list: each line names an internal that moved or
changed; fix spark_ls/server/pygls_compat.py (the only module that touches them) before release.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from spark_ls.server import pygls_compat

SERVER = Path(pygls_compat.__file__).resolve().parent


def test_installed_pygls_matches_the_overrides() -> None:
    problems = pygls_compat.check_compatible()
    assert problems == [], "pygls is incompatible with spark-ls's overrides:\n" + "\n".join(problems)


def test_an_incompatible_pygls_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from pygls.protocol.json_rpc import JsonRPCProtocol

    monkeypatch.delattr(JsonRPCProtocol, "_send_data")
    monkeypatch.setattr(pygls_compat, "PYGLS_SUPPORTED", ((1, 0), (1, 1)))
    problems = pygls_compat.check_compatible()
    assert any("_send_data" in p for p in problems), problems
    assert any("outside the tested range" in p for p in problems), problems


def test_only_the_compat_module_touches_pygls_internals() -> None:
    """Private pygls names (`_send_data`, `fm`, `pygls.io_`, ...) appear only in pygls_compat.py."""
    internal = {"_send_data", "_send_response", "_shutdown", "_include_headers", "_request_futures", "fm"}
    offenders = []
    for path in SERVER.glob("*.py"):
        if path.name == "pygls_compat.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in internal:
                offenders.append(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("pygls.io_", "pygls.protocol")):
                offenders.append(f"{path.name}:{node.lineno} from {node.module}")
    assert offenders == []
