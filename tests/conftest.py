"""Shared fixtures. ``model_endpoint``: a started fake model endpoint (tests/model_endpoint.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# CI runs the property tests on a fixed seed so a run is reproducible; locally they explore anew.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_endpoint import ModelEndpoint

TEST_API_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def model_endpoint() -> Iterator[ModelEndpoint]:
    """A fake model endpoint on loopback requiring ``TEST_API_KEY``; stopped after the test."""
    endpoint = ModelEndpoint(api_key=TEST_API_KEY).start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


# The VS Code harness's fixture, shared by tests/test_vscode_e2e.py and tests/test_inline_vscode.py
# (imported last: vscode_helpers reads TEST_API_KEY from this module).
from vscode_helpers import vscode_factory  # noqa: F401
