"""Settings per workspace folder; workspace/didChangeConfiguration and
workspace/didChangeWorkspaceFolders applied without a restart.

Each workspace folder has its own settings (its own ``spark-ls.toml`` / ``pyproject.toml``); a
document's per-request settings (``scope="folder"`` in spark_ls/config.py: context budget,
prefetch, diagnostics, user actions, ...) come from the folder containing it. The model session
is one per server and uses the first folder's settings; when a change touches a session setting
(model, endpoint, transport, pool, timeouts, ...) the session is replaced.

Editor settings are the ``initializationOptions`` overlaid with the latest
``workspace/didChangeConfiguration`` payload (its ``spark-ls`` / ``spark`` section when it has one).
An empty payload (the "pull" style) re-reads the workspace files and keeps the editor settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import to_fs_path

from spark_ls.actions.catalog import ActionSpec, load_catalog
from spark_ls.config import (
    Resolved,
    Settings,
    folder_for,
    resolve_settings,
    session_changed,
)

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

log = logging.getLogger("spark_ls.server.configuration")

SECTIONS = ("spark-ls", "spark_ls", "sparkLs", "spark")
MAX_SHOWN_PROBLEMS = 5


def editor_section(payload: Any) -> dict[str, Any]:
    """The spark-ls settings in a didChangeConfiguration payload (or initializationOptions)."""
    if not isinstance(payload, Mapping):
        return {}
    for section in SECTIONS:
        inner = payload.get(section)
        if isinstance(inner, Mapping):
            return dict(inner)
    return dict(payload)


class WorkspaceConfiguration:
    """The resolved settings of every workspace folder. Plain state: no LSP I/O."""

    def __init__(self, cli: Mapping[str, Any] | None = None) -> None:
        self.cli = dict(cli or {})
        self.folders: list[str] = []
        self.init_options: dict[str, Any] = {}
        self.pushed: dict[str, Any] = {}
        self.resolved: dict[str | None, Resolved] = {}
        self.catalogs: dict[str | None, list[ActionSpec]] = {}
        self._folder_of: dict[str, str | None] = {}  # uri -> folder, for self._folders_seen
        self._folders_seen: list[str] = []

    @property
    def editor(self) -> dict[str, Any]:
        return {**self.init_options, **self.pushed}

    def resolve(self) -> list[str]:
        """Re-read every folder's settings; returns the problems (each once)."""
        resolved: dict[str | None, Resolved] = {}
        editor_where = "editor settings"
        for folder in [*self.folders, None] if self.folders else [None]:
            resolved[folder] = resolve_settings(folder, editor=self.editor, cli=self.cli, editor_where=editor_where)
        self.resolved = resolved
        self.catalogs = {folder: load_catalog(r.settings) for folder, r in resolved.items()}
        return list(dict.fromkeys(p for r in resolved.values() for p in r.problems))

    @property
    def primary(self) -> Settings:
        """Server-wide settings: the first folder's (or, without folders, no workspace file's)."""
        key = self.folders[0] if self.folders else None
        return self.resolved[key].settings if key in self.resolved else Settings()

    def folder_of(self, uri: str) -> str | None:
        """The workspace folder holding ``uri`` (remembered per URI: every request asks)."""
        if self._folders_seen != self.folders:
            self._folder_of.clear()
            self._folders_seen = list(self.folders)
        try:
            return self._folder_of[uri]
        except KeyError:
            pass
        path = to_fs_path(uri) if uri.startswith("file:") else None
        folder = folder_for(path, self.folders) if path else None
        if len(self._folder_of) >= 4096:
            self._folder_of.clear()
        self._folder_of[uri] = folder
        return folder

    def settings_for(self, uri: str) -> Settings:
        folder = self.folder_of(uri)
        result = self.resolved.get(folder) or self.resolved.get(None)
        return result.settings if result else self.primary

    def catalog_for(self, uri: str) -> list[ActionSpec] | None:
        folder = self.folder_of(uri)
        return self.catalogs.get(folder, self.catalogs.get(None))


def folders_of(params: types.InitializeParams) -> list[str]:
    if params.workspace_folders:
        paths = [to_fs_path(f.uri) for f in params.workspace_folders]
    elif params.root_uri:
        paths = [to_fs_path(params.root_uri)]
    else:
        paths = [params.root_path]
    return [p for p in paths if p]


def initialize(ls: SparkLanguageServer, params: types.InitializeParams) -> None:
    """Called from ``initialize``: every folder's settings, before the session starts."""
    config = ls.configuration
    config.folders = [f for f in folders_of(params) if f]
    config.init_options = editor_section(params.initialization_options)
    apply(ls, config.resolve(), restart_session=False)


def apply(ls: SparkLanguageServer, problems: list[str], *, restart_session: bool = True) -> None:
    config = ls.configuration
    old = ls.settings
    ls.settings = config.primary
    ls.catalog = config.catalogs.get(config.folders[0] if config.folders else None) or ls.catalog
    ls.documents.max_chars = ls.settings.max_document_chars
    report(ls, problems)
    if restart_session and ls.session_ready is not None and session_changed(old, ls.settings):
        log.info("session settings changed: starting a new model session")
        asyncio.get_running_loop().create_task(_restart_session(ls))


def report(ls: SparkLanguageServer, problems: list[str]) -> None:
    """Each problem in the log; a summary in the editor (the new ones only)."""
    new = [p for p in problems if p not in ls.configuration_reported]
    ls.configuration_reported = set(problems)
    for problem in new:
        log.warning("%s", problem)
    if not new:
        return
    shown = "; ".join(new[:MAX_SHOWN_PROBLEMS])
    more = f" (and {len(new) - MAX_SHOWN_PROBLEMS} more in the log)" if len(new) > MAX_SHOWN_PROBLEMS else ""
    ls.notify_user("warning", f"settings: {shown}{more}")


async def _restart_session(ls: SparkLanguageServer) -> None:
    if ls.session_ready is not None:
        await asyncio.shield(ls.session_ready)  # let a session that is still starting finish first
    old = ls.session
    ls.session = None
    ls.session_problem = None
    await ls.start_session()
    if old is not None:
        try:
            await old.close()
        except Exception as exc:  # noqa: BLE001 - the old session is gone either way
            log.info("closing the previous model session: %s", exc)


def register(server: SparkLanguageServer) -> None:
    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: SparkLanguageServer, params: types.DidChangeConfigurationParams) -> None:
        ls.configuration.pushed = editor_section(params.settings)
        apply(ls, ls.configuration.resolve())

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_workspace_folders(ls: SparkLanguageServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        config = ls.configuration
        removed = {to_fs_path(f.uri) for f in params.event.removed or []}
        folders = [f for f in config.folders if f not in removed]
        folders += [p for p in (to_fs_path(f.uri) for f in params.event.added or []) if p and p not in folders]
        config.folders = folders
        apply(ls, config.resolve())
