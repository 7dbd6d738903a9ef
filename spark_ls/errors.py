"""Exceptions shared by modules that must not import each other (kept free of imports)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting has a value spark-ls cannot use."""
