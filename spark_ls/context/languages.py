"""The grammar registry: one folder per language under ``grammars/`` (packaged as
``spark_ls_grammars``), each with a ``manifest.toml`` and tree-sitter queries (``*.scm``).

Adding a language means adding a folder; no Python changes. Extra grammar folders can be
given with the ``SPARK_LS_GRAMMARS`` environment variable (``os.pathsep``-separated list of
directories, each holding language folders) or the ``extra_dirs`` parameter; a later folder
with the same language name overrides an earlier one.

manifest.toml::

    name = "python"
    extensions = [".py", ".pyi"]
    language_ids = ["python"]          # LSP language identifiers
    grammar = "tree_sitter_python:language"   # module:function returning the language pointer
    [comment]
    line = "#"                         # optional
    block = ["/*", "*/"]               # optional
    [recovery]
    member_wrap = ["class _ {\n", "\n}"]  # optional: lets a class member parse on its own
                                        # (used to find definitions the tree lost to errors)
    body_stub = "\n}"                    # optional: closes a definition's header on its own

Queries (all optional; a missing query just yields nothing):

- ``scopes.scm``: ``@scope.<kind>`` on the scope node (kind: function, method, class, ...) with
  ``@name`` on its name. A ``function`` whose nearest enclosing scope is a ``class`` is reported
  as a ``method``.
- ``imports.scm``: ``@import`` on top-level import statements; ``@import.anchor`` on leading
  nodes new imports must go after (package clause, module docstring).
- ``definitions.scm``: ``@definition.<kind>`` with ``@name`` and optionally ``@body`` (the part
  elided when only a signature is shown).
- ``references.scm``: ``@reference`` on identifiers a piece of code uses.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import tree_sitter

log = logging.getLogger(__name__)

GRAMMARS_ENV = "SPARK_LS_GRAMMARS"

_missing_logged: set[str] = set()
_missing_lock = threading.Lock()


@dataclass(eq=False)
class LanguageSpec:
    name: str
    extensions: tuple[str, ...]
    language_ids: tuple[str, ...]
    grammar: str  # "module:function"
    queries: dict[str, str] = field(default_factory=dict)
    comment_line: str | None = None
    comment_block: tuple[str, str] | None = None
    recovery_wrap: tuple[str, str] | None = None  # text around a member parsed on its own
    recovery_stub: str | None = None  # an empty body completing a definition's header
    source: str = ""  # the folder the manifest came from, for messages
    _language: tree_sitter.Language | None = field(default=None, init=False, repr=False)
    _loaded: bool = field(default=False, init=False, repr=False)
    _compiled: dict[str, tree_sitter.Query | None] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def ts_language(self) -> tree_sitter.Language | None:
        """The tree-sitter language, or None when the grammar wheel is missing (logged once)."""
        with self._lock:
            if not self._loaded:
                self._language = _load_grammar(self.name, self.grammar)
                self._loaded = True
            return self._language

    def parser(self) -> tree_sitter.Parser | None:
        """A new parser (parsers are not thread-safe, so each document owns one)."""
        language = self.ts_language()
        return tree_sitter.Parser(language) if language is not None else None

    def query(self, name: str) -> tree_sitter.Query | None:
        """The compiled query ``<name>.scm``, or None when absent or the grammar is missing."""
        language = self.ts_language()
        if language is None:
            return None
        with self._lock:
            if name not in self._compiled:
                source = self.queries.get(name)
                compiled = None
                if source and source.strip():
                    try:
                        compiled = tree_sitter.Query(language, source)
                    except tree_sitter.QueryError as exc:  # a broken query must not break the server
                        log.warning("grammar %s: query %s.scm does not compile: %s", self.name, name, exc)
                self._compiled[name] = compiled
            return self._compiled[name]


def _load_grammar(name: str, grammar: str) -> tree_sitter.Language | None:
    module_name, _, function_name = grammar.partition(":")
    try:
        module = importlib.import_module(module_name)
        pointer = getattr(module, function_name or "language")()
        return tree_sitter.Language(pointer)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        with _missing_lock:
            if name not in _missing_logged:
                _missing_logged.add(name)
                log.warning(
                    "grammar for %s (%s) is not available (%s); using plain line windows for context",
                    name, grammar, exc,
                )
        return None


def _pair(value: object) -> tuple[str, str] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_language(folder: Traversable) -> LanguageSpec | None:
    manifest = folder.joinpath("manifest.toml")
    if not manifest.is_file():
        return None
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        log.warning("grammar folder %s: unreadable manifest.toml: %s", folder, exc)
        return None
    queries = {
        entry.name[: -len(".scm")]: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".scm") and entry.is_file()
    }
    comment = data.get("comment", {})
    block = comment.get("block")
    return LanguageSpec(
        name=str(data.get("name", folder.name)),
        extensions=tuple(str(e).lower() for e in data.get("extensions", ())),
        language_ids=tuple(str(i) for i in data.get("language_ids", ())),
        grammar=str(data["grammar"]) if "grammar" in data else "",
        queries=queries,
        comment_line=comment.get("line"),
        comment_block=(str(block[0]), str(block[1])) if block and len(block) == 2 else None,
        recovery_wrap=_pair(data.get("recovery", {}).get("member_wrap")),
        recovery_stub=_text(data.get("recovery", {}).get("body_stub")),
        source=str(folder),
    )


@lru_cache(maxsize=16)
def _registry(roots_key: tuple[str, ...]) -> tuple[LanguageSpec, ...]:
    by_name: dict[str, LanguageSpec] = {}
    for root in _grammar_roots_from_key(roots_key):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir(), key=lambda f: f.name):
            if folder.is_dir():
                spec = _read_language(folder)
                if spec is not None:
                    by_name[spec.name] = spec  # later roots override earlier ones
    return tuple(by_name.values())


def _grammar_roots_from_key(roots_key: tuple[str, ...]) -> list[Traversable]:
    return [files("spark_ls_grammars")] + [Path(p) for p in roots_key]


def _roots_key(extra_dirs: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    # The builtin root is implicit; the key covers the env var and the explicit folders so a
    # changed SPARK_LS_GRAMMARS is picked up without restarting.
    env = os.environ.get(GRAMMARS_ENV, "")
    return tuple(p for p in env.split(os.pathsep) if p.strip()) + tuple(os.fspath(p) for p in extra_dirs)


def all_languages(extra_dirs: Sequence[str | os.PathLike[str]] = ()) -> list[LanguageSpec]:
    """Every known language (built-in grammars, then ``SPARK_LS_GRAMMARS``, then ``extra_dirs``)."""
    return list(_registry(_roots_key(extra_dirs)))


def language_for(
    *,
    path: str | None = None,
    language_id: str | None = None,
    extra_dirs: Sequence[str | os.PathLike[str]] = (),
) -> LanguageSpec | None:
    """The language for an LSP language id (preferred) or else a file path's extension."""
    languages = all_languages(extra_dirs)
    if language_id:
        wanted = language_id.lower()
        for spec in languages:
            if wanted in (i.lower() for i in spec.language_ids) or wanted == spec.name.lower():
                return spec
    if path:
        lowered = os.path.basename(path).lower()
        best: tuple[int, LanguageSpec] | None = None
        for spec in languages:
            for ext in spec.extensions:
                if lowered.endswith(ext) and (best is None or len(ext) > best[0]):
                    best = (len(ext), spec)
        if best is not None:
            return best[1]
    return None


def reload_languages() -> None:
    """Forget cached registries (for tests and after grammar folders change on disk)."""
    _registry.cache_clear()
