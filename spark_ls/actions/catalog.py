"""The action catalog: built-in and user-defined actions, all plain data.

Listing actions never calls the model: :func:`applicable_actions` only looks at the cursor's
scope, the selection and the diagnostics the client passed in.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from spark_ls.errors import ConfigError

if TYPE_CHECKING:
    from spark_ls.config import Settings

APPLIES_TO = ("diagnostic", "scope", "selection", "file")
# The one-off action of "edit with instruction" / `check --instruction`: its instruction is the
# user's text and is the whole task (see actions.run.task_text).
INSTRUCTION_ACTION_ID = "instruction"
_KIND_PREFIXES = ("quickfix", "refactor", "source")


@dataclass(frozen=True)
class ActionSpec:
    id: str
    title: str
    kind: str
    instruction: str
    applies_to: str = "scope"
    languages: tuple[str, ...] = ("*",)
    scope_kinds: tuple[str, ...] = ("function", "method", "class")
    allow_imports: bool = False
    # May the edit add definitions next to its target (extract function)? Never one shadowing a
    # name already bound there; see spark_ls.diffs.structure.
    allow_new_definitions: bool = False
    requires: str | None = None  # regex the target scope's text must match
    user_defined: bool = False
    preserves_behaviour: bool = False  # a refactoring: tests must give the same result (--verify)
    _requires_re: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def supports(self, language: str | None) -> bool:
        return "*" in self.languages or (language is not None and language in self.languages)

    def matches_text(self, text: str) -> bool:
        return self._requires_re is None or self._requires_re.search(text) is not None

    def format_title(self, **values: Any) -> str:
        return _format(self.title, values)

    def format_instruction(self, **values: Any) -> str:
        return _format(self.instruction, values)


    @property
    def requires_re(self) -> re.Pattern[str] | None:
        """The compiled ``requires`` pattern (None: any text)."""
        return self._requires_re


class _Missing(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _format(template: str, values: Mapping[str, Any]) -> str:
    return template.format_map(_Missing({k: v for k, v in values.items() if v is not None}))


def action_from_table(table: Mapping[str, Any], *, user_defined: bool) -> ActionSpec:
    """Build an action from a TOML/JSON table, with errors a user can act on."""
    where = f"action {table.get('id') or table.get('title') or '?'!r}"
    try:
        title = str(table["title"])
        instruction = str(table["instruction"])
    except KeyError as missing:
        raise ConfigError(f"{where}: missing key {missing.args[0]!r}") from None
    action_id = str(table.get("id") or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"))
    kind = str(table.get("kind", "refactor.rewrite"))
    if not kind.startswith(_KIND_PREFIXES):
        raise ConfigError(f"{where}: kind must start with quickfix, refactor or source, not {kind!r}")
    applies_to = str(table.get("applies_to", table.get("when", "scope")))
    if applies_to not in APPLIES_TO:
        raise ConfigError(f"{where}: applies_to must be one of {', '.join(APPLIES_TO)}, not {applies_to!r}")
    requires = table.get("requires")
    try:
        compiled = re.compile(requires) if requires else None
    except re.error as exc:
        raise ConfigError(f"{where}: bad 'requires' pattern: {exc}") from None
    languages = table.get("languages", ["*"])
    if isinstance(languages, str):
        languages = [languages]
    return ActionSpec(
        id=action_id,
        title=title,
        kind=kind,
        instruction=instruction,
        applies_to=applies_to,
        languages=tuple(languages),
        scope_kinds=tuple(table.get("scope_kinds", ("function", "method", "class"))),
        allow_imports=bool(table.get("allow_imports", False)),
        allow_new_definitions=bool(table.get("allow_new_definitions", False)),
        requires=requires,
        user_defined=user_defined,
        preserves_behaviour=bool(table.get("preserves_behaviour", False)),
        _requires_re=compiled,
    )


def builtin_actions() -> list[ActionSpec]:
    raw = resources.files("spark_ls.actions").joinpath("builtin.toml").read_text(encoding="utf-8")
    return [action_from_table(t, user_defined=False) for t in tomllib.loads(raw)["action"]]


def load_catalog(settings: Settings) -> list[ActionSpec]:
    """Built-ins followed by user-defined actions; a user action replaces a built-in with its id."""
    actions = {a.id: a for a in builtin_actions()}
    for table in settings.actions:
        action = action_from_table(table, user_defined=True)
        actions[action.id] = action
    return list(actions.values())


def find_action(catalog: Iterable[ActionSpec], action_id: str) -> ActionSpec | None:
    return next((a for a in catalog if a.id == action_id), None)


def kind_allowed(kind: str, only: Iterable[str] | None) -> bool:
    """LSP `context.only` filtering: 'refactor' admits 'refactor.rewrite' and so on."""
    if not only:
        return True
    return any(kind == o or kind.startswith(o + ".") for o in only)
