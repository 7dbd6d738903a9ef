"""One settings object, merged from (lowest to highest priority):
built-in defaults < environment < workspace ``pyproject.toml`` ``[tool.spark-ls]`` < editor
``initializationOptions`` (or CLI flags).

The API key is wrapped in :class:`Secret` so that it never shows up in a repr, a log line or
an error message by accident.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

DEFAULT_MODEL = "gpt-5.3-codex-spark"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
TRANSPORTS = ("auto", "ws", "responses", "chat", "local")


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


class ConfigError(ValueError):
    """A setting has a value spark-ls cannot use."""


@dataclass(frozen=True)
class Settings:
    # Model selection ("classic mode": pinned models and explicit fallbacks).
    model: str = DEFAULT_MODEL
    fallback_models: tuple[str, ...] = ()
    pin: bool = False
    edit_format: str = "auto"  # auto | diff | scope
    # Endpoint.
    transport: str = "auto"  # auto | ws | responses | chat | local
    base_url: str | None = None
    api_key: Secret | None = field(default=None, repr=False)
    tls_verify: bool = True
    store: bool = False
    # Session behaviour.
    pool_size: int = 2
    connect_timeout: float = 10.0
    request_timeout: float = 120.0
    idle_timeout: float = 300.0
    max_connection_age: float = 55 * 60.0  # reconnect before the server's 60-minute limit
    max_reply_bytes: int = 512 * 1024
    max_retries: int = 2
    record: str | None = None
    replay: str | None = None
    # Embedded local model.
    local_model_path: str | None = None
    local_threads: int = 2
    local_ctx: int = 4096
    local_request_timeout: float = 900.0
    # Editor features.
    context_budget: int = 2000
    prefetch: bool = True
    diagnostics: bool = True
    diagnostics_debounce: float = 0.3
    max_document_chars: int = 1_000_000  # larger documents are kept in sync but get no actions
    actions: tuple[Mapping[str, Any], ...] = ()  # user-defined actions (raw tables)
    # Quality (#12): a test command run on each fix before it is offered (untrusted in a
    # repository's own config: it is a shell command), and the model's second look at a fix.
    verify_command: str | None = None
    verify_timeout: float = 300.0
    second_look: bool = False

    @property
    def uses_local_model(self) -> bool:
        if self.transport == "local":
            return True
        return self.transport == "auto" and not self.base_url and not self.api_key

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URL).rstrip("/")

    def merged(self, overrides: Mapping[str, Any]) -> "Settings":
        """Return a copy with ``overrides`` (a user-facing table) applied and validated."""
        return _apply(self, overrides)


_KEY_ALIASES = {
    "fallback-models": "fallback_models",
    "fallbacks": "fallback_models",
    "base-url": "base_url",
    "baseUrl": "base_url",
    "api-key": "api_key",
    "apiKey": "api_key",
    "fallbackModels": "fallback_models",
    "editFormat": "edit_format",
    "edit-format": "edit_format",
    "poolSize": "pool_size",
    "pool-size": "pool_size",
    "contextBudget": "context_budget",
    "context-budget": "context_budget",
    "tlsVerify": "tls_verify",
    "tls-verify": "tls_verify",
    "requestTimeout": "request_timeout",
    "request-timeout": "request_timeout",
    "connectTimeout": "connect_timeout",
    "connect-timeout": "connect_timeout",
    "maxReplyBytes": "max_reply_bytes",
    "localModelPath": "local_model_path",
    "local-model-path": "local_model_path",
    "localThreads": "local_threads",
    "local-threads": "local_threads",
    "maxDocumentChars": "max_document_chars",
    "max-document-chars": "max_document_chars",
    "verifyCommand": "verify_command",
    "verifyTimeout": "verify_timeout",
    "secondLook": "second_look",
}

# A workspace's own config file is untrusted (a cloned repository, a pull request under CI): it may
# not redirect the user's key to another endpoint, weaken TLS, or read or write files elsewhere.
# These come only from the environment, the editor's settings or the command line.
UNTRUSTED_WORKSPACE_KEYS = frozenset(
    {"base_url", "api_key", "tls_verify", "record", "replay", "local_model_path", "verify_command"}
)

_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any, current: Any) -> Any:
    if name == "api_key":
        if value is None or value == "":
            return None
        return value if isinstance(value, Secret) else Secret(str(value))
    if name == "fallback_models":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return tuple(str(v) for v in value)
    if name == "actions":
        if isinstance(value, Mapping):  # {id: {...}} form
            value = [{"id": k, **v} for k, v in value.items()]
        return tuple(dict(v) for v in value)
    default = _FIELDS[name].default
    kind = type(default) if default is not None and default is not dataclasses.MISSING else None
    if kind is bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    if value is None:
        return None
    return str(value)


def _apply(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    changes: dict[str, Any] = {}
    for raw_key, value in overrides.items():
        key = _KEY_ALIASES.get(raw_key, raw_key.replace("-", "_"))
        if key not in _FIELDS:
            continue  # unknown keys are ignored so newer editor settings do not break older servers
        try:
            changes[key] = _coerce(key, value, getattr(settings, key))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {raw_key!r}: {exc}") from None
    result = dataclasses.replace(settings, **changes)
    if result.transport not in TRANSPORTS:
        raise ConfigError(f"transport must be one of {', '.join(TRANSPORTS)}, not {result.transport!r}")
    if result.edit_format not in ("auto", "diff", "scope"):
        raise ConfigError(f"edit_format must be auto, diff or scope, not {result.edit_format!r}")
    if result.pool_size < 1:
        raise ConfigError("pool_size must be at least 1")
    return result


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    table: dict[str, Any] = {}
    if env.get("OPENAI_API_KEY"):
        table["api_key"] = env["OPENAI_API_KEY"]
    if env.get("OPENAI_BASE_URL"):
        table["base_url"] = env["OPENAI_BASE_URL"]
    for name in _FIELDS:
        var = "SPARK_LS_" + name.upper()
        if name not in ("api_key", "actions") and env.get(var):
            table[name] = env[var]
    return table


def from_pyproject(workspace: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The ``[tool.spark-ls]`` table of ``<workspace>/pyproject.toml`` (or ``spark-ls.toml``),
    without the keys a repository may not set (see ``UNTRUSTED_WORKSPACE_KEYS``)."""
    if workspace is None:
        return {}
    root = Path(workspace)
    own = root / "spark-ls.toml"
    table: dict[str, Any] = {}
    if own.is_file():
        table, source = _read_toml(own), own
    elif (root / "pyproject.toml").is_file():
        source = root / "pyproject.toml"
        table = dict(_read_toml(source).get("tool", {}).get("spark-ls", {}))
    ignored = sorted(k for k in table if _KEY_ALIASES.get(k, k.replace("-", "_")) in UNTRUSTED_WORKSPACE_KEYS)
    if ignored:
        logging.getLogger("spark_ls.config").warning(
            "%s: ignoring %s: a repository's own config may not set these; use the environment "
            "(OPENAI_BASE_URL, SPARK_LS_*) or your editor's settings",
            source,
            ", ".join(ignored),
        )
    return {k: v for k, v in table.items() if k not in ignored}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(
    workspace: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    settings = Settings()
    settings = settings.merged(from_environment(environ))
    settings = settings.merged(from_pyproject(workspace))
    if overrides:
        settings = settings.merged(overrides)
    return settings
