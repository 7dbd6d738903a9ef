"""One settings object, merged from layers (lowest to highest priority):

built-in defaults < environment < the workspace folder's ``spark-ls.toml`` or ``pyproject.toml``
``[tool.spark-ls]`` < the editor's settings (``initializationOptions`` /
``workspace/didChangeConfiguration``) or the command line.

Every setting is one field of :class:`Settings`, declared with :func:`setting` (default,
description, range, choices, trust, scope). Everything else is derived from that one line: the
accepted names (``snake_case``, ``kebab-case``, ``camelCase``), the ``SPARK_LS_*`` environment
variable, validation, the JSON schema of ``[tool.spark-ls]`` and the VS Code settings
(:mod:`spark_ls.settings_schema`).

Values are structured by a strict :mod:`cattrs` converter (a TOML ``"false"`` is not ``True``, a
float is not an int). A bad value or an unknown key never stops the others: the key keeps the
value of the layer below (the default when nothing else set it) and a message says so.

The API key is wrapped in :class:`Secret` so that it never shows up in a repr, a log line or an
error message by accident.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import math
import os
import re
import tomllib
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Defined apart so spark_ls.actions.catalog can raise it without importing this module (no cycle).
from spark_ls.errors import ConfigError

if typing.TYPE_CHECKING:
    import cattrs

log = logging.getLogger("spark_ls.config")

DEFAULT_MODEL = "gpt-5.3-codex-spark"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
TRANSPORTS = ("auto", "ws", "responses", "chat", "local")
EDIT_FORMATS = ("auto", "diff", "scope")


class Secret:
    """A string that refuses to print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class SettingInfo:
    """What :func:`setting` records about a field (``dataclasses.Field.metadata["spark"]``)."""

    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # A workspace's own config file (a cloned repository, a pull request under CI) may not set it.
    untrusted: bool = False
    # "session": read by the model session, which is restarted when it changes.
    # "folder": read per request, from the settings of the document's workspace folder.
    # "server": server-wide (from the first workspace folder), applied without a session restart.
    scope: str = "session"
    secret: bool = False  # never echoed; not offered as a plain editor setting
    env: bool = True  # settable as SPARK_LS_<NAME>
    editor: bool = True  # offered as an editor (VS Code) setting


def setting(
    default: Any,
    description: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Sequence[str] = (),
    untrusted: bool = False,
    scope: str = "session",
    secret: bool = False,
    env: bool = True,
    editor: bool = True,
) -> Any:
    """Declare a setting: one line per setting in :class:`Settings`."""
    info = SettingInfo(
        description=description, minimum=minimum, maximum=maximum, choices=tuple(choices),
        untrusted=untrusted, scope=scope, secret=secret, env=env, editor=editor,
    )
    return field(default=default, metadata={"spark": info}, repr=not secret)


@dataclass(frozen=True)
class Settings:
    # Model selection ("classic mode": pinned models and explicit fallbacks).
    model: str = setting(DEFAULT_MODEL, "Model to use.")
    fallback_models: tuple[str, ...] = setting(
        (), "Models to try, in order, when the model is retired or unavailable (a list, or a comma-separated string).")
    pin: bool = setting(False, "Use exactly `model`: never switch to another model; stop with a message if it is retired.")
    edit_format: str = setting(
        "auto", "How the model writes its edits: `diff` (a unified diff), `scope` (the whole rewritten "
        "function), or `auto` (`scope` for the embedded local model, `diff` otherwise).", choices=EDIT_FORMATS)
    # Endpoint.
    transport: str = setting(
        "auto", "How to reach the model: `ws` (Responses API over a WebSocket), `responses` (HTTP SSE), "
        "`chat` (Chat Completions), `local` (the embedded model), or `auto` (WebSocket with HTTP fallback; "
        "the embedded model when no endpoint or key is configured).", choices=TRANSPORTS)
    base_url: str | None = setting(
        None, "Base URL of an OpenAI-compatible endpoint (default `OPENAI_BASE_URL`, else "
        "`https://api.openai.com/v1`).", untrusted=True)
    api_key: Secret | None = setting(  # noqa: RUF009 - setting() returns a dataclasses.field
        None, "API key (default `OPENAI_API_KEY`); sent only to `base_url`.", untrusted=True, secret=True, env=False,
        editor=False)
    tls_verify: bool = setting(
        True, "Verify the endpoint's TLS certificate (`false` / `--insecure` only for local test servers; logged as "
        "a warning).", untrusted=True)
    store: bool = setting(False, "Ask the endpoint to store responses (`store` in the Responses API).")
    ws_compression: bool = setting(
        False, "permessage-deflate on the model WebSocket (off by default: bench/bench_transport.py measures it "
        "costing more than it saves for Responses event streams; the official SDK is off too).")
    # Session behaviour.
    pool_size: int = setting(
        2, "Model connections kept open; more requests queue fairly (`check` uses `--jobs`).", minimum=1, maximum=64)
    connect_timeout: float = setting(10.0, "Seconds to wait for a connection to the endpoint.", minimum=0.1, maximum=600)
    request_timeout: float = setting(120.0, "Seconds to wait for one model reply.", minimum=0.1, maximum=3600)
    idle_timeout: float = setting(300.0, "Seconds an unused connection stays open.", minimum=1, maximum=86400)
    max_connection_age: float = setting(
        55 * 60.0, "Seconds before a connection is replaced (the endpoint closes them after 60 minutes).",
        minimum=1, maximum=86400)
    max_reply_bytes: int = setting(
        512 * 1024, "Largest model reply accepted, in bytes.", minimum=1024, maximum=64 * 1024 * 1024)
    max_retries: int = setting(
        2, "Retries after a rate limit (429, honouring `retry-after`) or a server error (5xx).", minimum=0, maximum=10)
    record: str | None = setting(
        None, "Record every model exchange to this JSON-lines cassette file (replay it for byte-identical CI runs).",
        untrusted=True)
    replay: str | None = setting(None, "Answer model requests from this cassette file (no endpoint).", untrusted=True)
    # Embedded local model.
    local_model_path: str | None = setting(
        None, "A GGUF file to use instead of the bundled Qwen2.5-Coder-1.5B weights.", untrusted=True)
    local_threads: int = setting(2, "CPU threads for the embedded model.", minimum=1, maximum=256)
    local_ctx: int = setting(4096, "Context window (tokens) of the embedded model.", minimum=512, maximum=131072)
    local_request_timeout: float = setting(
        900.0, "Seconds to wait for one reply from the embedded model.", minimum=1, maximum=86400)
    # Editor features.
    context_budget: int = setting(
        2000, "Tokens (about 4 characters each) of surrounding code sent with each request.", minimum=200,
        maximum=200_000, scope="folder")
    prefetch: bool = setting(
        True, "When the editor asks for actions on its own at a diagnostic, start computing the preferred "
        "fix in the background so it is ready when picked.", scope="folder")
    diagnostics: bool = setting(True, "Publish syntax errors as diagnostics (each with a fix action).", scope="folder")
    diagnostics_debounce: float = setting(
        0.3, "Seconds of typing pause before diagnostics are published.", minimum=0, maximum=10, scope="folder")
    max_document_chars: int = setting(
        1_000_000, "Larger documents are kept in sync but get no actions.", minimum=1000, maximum=100_000_000,
        scope="server")
    inline_completion: bool = setting(
        True, "Inline completions (ghost text) and next-edit suggestions (`spark/nextEdit`) as you type.",
        scope="folder")
    actions: tuple[Mapping[str, Any], ...] = setting(
        (), "User-defined actions: a list of tables (`id`, `title`, `instruction`, optional `kind`, "
        "`applies_to`, `languages`, `scope_kinds`, `allow_imports`, `allow_new_definitions`, `requires`), or a table of them by id.",
        scope="folder", env=False)
    # Quality (#12): a test command run on each fix before it is offered (untrusted in a repository's
    # own config: it is a shell command), and the model's second look at a fix.
    verify_command: str | None = setting(
        None, "A test command (e.g. `pytest -x -q`) run on a private copy of the workspace with each "
        "\"Fix bug\" / quick fix applied before it is offered: fixes that make it worse are dropped, fixes "
        "that turn it green are marked verified and preferred.", untrusted=True, scope="folder")
    verify_timeout: float = setting(
        300.0, "Seconds the verify command may run.", minimum=1, maximum=86400, scope="folder")
    second_look: bool = setting(
        False, "Ask the model a second time whether a proposed fix repairs a real defect; drop it if not.",
        scope="folder")

    @property
    def uses_local_model(self) -> bool:
        if self.transport == "local":
            return True
        return self.transport == "auto" and not self.base_url and not self.api_key

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")

    def merged(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with ``overrides`` (a user-facing table) applied; strict: any unknown key or bad
        value raises :class:`ConfigError` naming all of them."""
        result = resolve([Layer("overrides", "overrides", overrides)], base=self)
        if result.problems:
            raise ConfigError("; ".join(result.problems))
        return result.settings


# ---------------------------------------------------------------------------------------- fields

FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Settings)}
_TYPES: dict[str, Any] = typing.get_type_hints(Settings)


_UNDECLARED = SettingInfo(untrusted=True)  # safe until declared with setting(): never from a repository


def info(name: str) -> SettingInfo:
    """The declaration of setting ``name``; a plain field (not declared with :func:`setting`)
    counts as untrusted and undocumented (a test insists on :func:`setting`)."""
    meta = FIELDS[name].metadata.get("spark")
    return meta if isinstance(meta, SettingInfo) else _UNDECLARED


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def kebab(name: str) -> str:
    return name.replace("_", "-")


def env_var(name: str) -> str:
    return "SPARK_LS_" + name.upper()


_EXTRA_ALIASES = {"fallbacks": "fallback_models"}  # accepted for compatibility
KEY_NAMES: dict[str, str] = {
    **_EXTRA_ALIASES,
    **{alias: name for name in FIELDS for alias in (name, kebab(name), camel(name))},
}

# A workspace's own config file is untrusted (a cloned repository, a pull request under CI): it may
# not redirect the user's key to another endpoint, weaken TLS, or read or write files elsewhere.
# These come only from the environment, the editor's settings or the command line.
UNTRUSTED_WORKSPACE_KEYS = frozenset(name for name in FIELDS if info(name).untrusted)
FOLDER_KEYS = frozenset(name for name in FIELDS if info(name).scope == "folder")
SESSION_KEYS = frozenset(name for name in FIELDS if info(name).scope == "session")


def canonical(key: str) -> str | None:
    """The field a user-facing key names (any of its spellings), or None."""
    return KEY_NAMES.get(key) or KEY_NAMES.get(key.replace("-", "_"))


# ---------------------------------------------------------------------------------------- values

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {_show(value)}")


def _int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value.replace("_", "")):
        return int(value)
    raise ValueError(f"expected a whole number, got {_show(value)}")


def _float(value: Any, _: Any) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None or not math.isfinite(number):
        raise ValueError(f"expected a number, got {_show(value)}")
    return number


def _str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {_show(value)}")


def _strings(value: Any, _: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ValueError(f"expected a list of strings, got {_show(value)}")


def _secret(value: Any, _: Any) -> Secret | None:
    if isinstance(value, Secret):
        return value or None
    if isinstance(value, str):
        return Secret(value) if value else None
    raise ValueError("expected a string")


def _tables(value: Any, _: Any) -> tuple[Mapping[str, Any], ...]:
    if isinstance(value, Mapping):  # {id: {...}} form
        if not all(isinstance(v, Mapping) for v in value.values()):
            raise ValueError("expected a table of action tables")
        return tuple({"id": k, **v} for k, v in value.items())
    if isinstance(value, (list, tuple)) and all(isinstance(v, Mapping) for v in value):
        return tuple(dict(v) for v in value)
    raise ValueError(f"expected a list of action tables, got {_show(value)}")


def _is(hint: Any) -> Callable[[Any], bool]:
    return lambda t: bool(t == hint)


@functools.cache
def converter() -> cattrs.Converter:
    """The strict converter (built on first use: cattrs costs ~0.1 s to import)."""
    import cattrs

    converter = cattrs.Converter()
    converter.register_structure_hook(bool, _bool)
    converter.register_structure_hook(int, _int)
    converter.register_structure_hook(float, _float)
    converter.register_structure_hook(str, _str)
    converter.register_structure_hook(Secret, _secret)
    hooks: list[tuple[Any, Callable[[Any, Any], Any]]] = [
        (tuple[str, ...], _strings), (Secret | None, _secret), (tuple[Mapping[str, Any], ...], _tables),
    ]
    for hint, hook in hooks:
        converter.register_structure_hook_func(_is(hint), hook)
    return converter


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _described(name: str, value: Any) -> str:
    if info(name).secret:
        return "***" if value else "unset"
    if value is None:
        return "unset"
    return _show(value)


def structure(name: str, value: Any) -> Any:
    """``value`` as setting ``name``'s type, checked against its range and choices; raises
    ValueError with a message for the user."""
    hint = _TYPES[name]
    if value is None and type(None) in typing.get_args(hint):
        return None
    import cattrs

    try:
        result = converter().structure(value, hint)
    except cattrs.BaseValidationError as exc:
        reasons = [str(e) for e in exc.exceptions] or [str(exc)]
        raise ValueError("; ".join(reasons)) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc) or f"cannot use {_show(value)}") from None
    meta = info(name)
    if isinstance(result, str) and hint in (str, str | None):
        result = result.strip()
        if not result:
            if hint is str:
                raise ValueError("must not be empty")
            raise _Unset  # an empty optional string leaves the value of the layer below
    if meta.choices and result not in meta.choices:
        raise ValueError(f"must be one of {', '.join(meta.choices)}, not {_show(result)}")
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        if meta.minimum is not None and result < meta.minimum:
            raise ValueError(f"must be at least {_num(meta.minimum)}, not {_num(result)}")
        if meta.maximum is not None and result > meta.maximum:
            raise ValueError(f"must be at most {_num(meta.maximum)}, not {_num(result)}")
    if name == "actions":
        result = _valid_actions(result)
    return result


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _valid_actions(tables: tuple[Mapping[str, Any], ...]) -> tuple[Mapping[str, Any], ...]:
    # Checked here, where a bad one can be reported and dropped alone (the catalog raises).
    from spark_ls.actions.catalog import action_from_table

    good: list[Mapping[str, Any]] = []
    bad: list[str] = []
    for table in tables:
        try:
            action_from_table(table, user_defined=True)
        except ConfigError as exc:
            bad.append(str(exc))
        else:
            good.append(table)
    if bad:
        raise _PartialValue(tuple(good), "; ".join(bad) + " (that action is ignored, the others apply)")
    return tuple(good)


class _Unset(Exception):
    """The value says "not set here" (an empty optional string)."""


class _PartialValue(ValueError):
    """Part of a value is usable: ``usable`` applies, the message reports the rest."""

    def __init__(self, usable: Any, message: str) -> None:
        super().__init__(message)
        self.usable = usable


# ---------------------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    """One source of settings: ``kind`` is default | env | workspace | editor | cli."""

    kind: str
    where: str  # shown to the user: "environment", "/repo/pyproject.toml [tool.spark-ls]", ...
    values: Mapping[str, Any]
    trusted: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)  # raw key -> how to name it (env var)


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    sources: Mapping[str, str]  # field -> where its value came from ("default" when nobody set it)
    problems: tuple[str, ...]  # one message per unknown key, bad value or refused key

    def warn(self, logger: logging.Logger = log) -> None:
        for problem in self.problems:
            logger.warning("%s", problem)


def resolve(layers: Iterable[Layer], base: Settings | None = None) -> Resolved:
    """Apply ``layers`` in order (later wins) over ``base``; never raises for a bad key."""
    current: dict[str, Any] = {name: getattr(base or Settings(), name) for name in FIELDS}
    sources: dict[str, str] = {name: "default" for name in FIELDS}
    problems: list[str] = []
    for layer in layers:
        refused: list[str] = []
        for raw_key, value in layer.values.items():
            label = layer.labels.get(raw_key, repr(raw_key))
            name = canonical(str(raw_key))
            if name is None:
                hint = difflib.get_close_matches(str(raw_key), list(KEY_NAMES), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(f"{layer.where}: unknown setting {label}{suggestion}; ignored")
                continue
            if not layer.trusted and name in UNTRUSTED_WORKSPACE_KEYS:
                refused.append(str(raw_key))
                continue
            where = f"{layer.where} ({layer.labels[raw_key]})" if raw_key in layer.labels else layer.where
            try:
                current[name] = structure(name, value)
            except _Unset:
                continue
            except _PartialValue as exc:
                current[name] = exc.usable
                sources[name] = where
                problems.append(f"{layer.where}: setting {label}: {exc}")
                continue
            except ValueError as exc:
                origin = "the default" if sources[name] == "default" else f"from {sources[name]}"
                problems.append(
                    f"{layer.where}: setting {label}: {exc}; using {_described(name, current[name])} ({origin})"
                )
                continue
            sources[name] = where
        if refused:
            problems.append(
                f"{layer.where}: ignoring {', '.join(sorted(refused))}: a repository's own config may not set "
                "these; use the environment (OPENAI_BASE_URL, SPARK_LS_*) or your editor's settings"
            )
    return Resolved(Settings(**current), sources, tuple(problems))


def environment_layer(environ: Mapping[str, str] | None = None) -> Layer:
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    if env.get("OPENAI_API_KEY"):
        values["api_key"], labels["api_key"] = env["OPENAI_API_KEY"], "OPENAI_API_KEY"
    if env.get("OPENAI_BASE_URL"):
        values["base_url"], labels["base_url"] = env["OPENAI_BASE_URL"], "OPENAI_BASE_URL"
    for name in FIELDS:
        var = env_var(name)
        if info(name).env and env.get(var):
            values[name], labels[name] = env[var], var
    return Layer("env", "environment", values, labels=labels)


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    return dict(environment_layer(environ).values)


def workspace_file(workspace: str | os.PathLike[str] | None) -> Path | None:
    """The config file of a workspace folder: ``spark-ls.toml``, else ``pyproject.toml``."""
    if workspace is None:
        return None
    root = Path(workspace)
    for candidate in (root / "spark-ls.toml", root / "pyproject.toml"):
        if candidate.is_file():
            return candidate
    return None


def workspace_layers(workspace: str | os.PathLike[str] | None) -> tuple[list[Layer], list[str]]:
    """The untrusted layer of ``workspace``'s own config file (if any), and read problems."""
    path = workspace_file(workspace)
    if path is None:
        return [], []
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [], [f"{path}: {exc}; its settings are ignored"]
    if path.name == "spark-ls.toml":
        return [Layer("workspace", str(path), data, trusted=False)], []
    table = data.get("tool", {}).get("spark-ls", {})
    if not isinstance(table, Mapping):
        return [], [f"{path}: [tool.spark-ls] must be a table; ignored"]
    if not table:
        return [], []
    return [Layer("workspace", f"{path} [tool.spark-ls]", table, trusted=False)], []


def from_pyproject(workspace: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The trusted part of ``workspace``'s own config (see ``UNTRUSTED_WORKSPACE_KEYS``)."""
    layers, problems = workspace_layers(workspace)
    for problem in problems:
        log.warning("%s", problem)
    table: dict[str, Any] = {}
    for layer in layers:
        refused = sorted(k for k in layer.values if canonical(str(k)) in UNTRUSTED_WORKSPACE_KEYS)
        if refused:
            log.warning("%s: ignoring %s: a repository's own config may not set these; use the environment "
                        "(OPENAI_BASE_URL, SPARK_LS_*) or your editor's settings", layer.where, ", ".join(refused))
        table.update({k: v for k, v in layer.values.items() if k not in refused})
    return table


def resolve_settings(
    workspace: str | os.PathLike[str] | None = None,
    *,
    editor: Mapping[str, Any] | None = None,
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    editor_where: str = "editor settings",
) -> Resolved:
    """Every layer for one workspace folder, with where each value came from and the problems."""
    layers = [environment_layer(environ)]
    folder_layers, problems = workspace_layers(workspace)
    layers += folder_layers
    if editor:
        layers.append(Layer("editor", editor_where, editor))
    if cli:
        layers.append(Layer("cli", "command line", cli))
    result = resolve(layers)
    return dataclasses.replace(result, problems=tuple(problems) + result.problems)


def load_settings(
    workspace: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    report: Callable[[str], None] | None = None,
) -> Settings:
    """The settings for ``workspace``; each problem is logged (or passed to ``report``)."""
    result = resolve_settings(workspace, editor=overrides, environ=environ)
    for problem in result.problems:
        (report or log.warning)(problem)
    return result.settings


def session_changed(old: Settings, new: Settings) -> bool:
    """Whether going from ``old`` to ``new`` needs a new model session."""
    return any(getattr(old, name) != getattr(new, name) for name in SESSION_KEYS)


def display_value(name: str, value: Any) -> Any:
    """A value as shown by `spark-ls config` (secrets masked, tuples as lists)."""
    if info(name).secret:
        return "***" if value else None
    if isinstance(value, tuple):
        return [dict(v) if isinstance(v, Mapping) else v for v in value]
    return value


def folder_for(path: str | os.PathLike[str], folders: Iterable[str]) -> str | None:
    """The innermost of ``folders`` containing ``path`` (nested folders: the deepest wins)."""
    target = Path(path)
    best: str | None = None
    for folder in folders:
        root = Path(folder)
        if (target == root or root in target.parents) and (best is None or len(str(root)) > len(best)):
            best = str(root)
    return best


def command_line_overrides(args: object) -> dict[str, Any]:
    """The model settings given on a command line (`serve`, `check`, `models`, `model-server`):
    the highest-priority layer. ``args`` is an argparse namespace; absent options are skipped."""
    overrides: dict[str, Any] = {}
    for name in ("model", "base_url", "transport", "record", "replay", "edit_format", "fallback_models"):
        value = getattr(args, name, None)
        if value:
            overrides[name] = value
    if getattr(args, "second_look", None) is not None:
        overrides["second_look"] = args.second_look  # type: ignore[attr-defined]
    if getattr(args, "pin", False):
        overrides["pin"] = True
    if getattr(args, "insecure", False):
        overrides["tls_verify"] = False
    return overrides
