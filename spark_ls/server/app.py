"""The spark-ls language server's state: settings, documents, client capabilities, the model
session, features, and user-facing messages.

It imports no handler module: handlers are registered by :func:`spark_ls.server.main.create_server`
and import this type only for annotations. Transports live in server/transport.py; everything
spark-ls changes in pygls lives in server/pygls_compat.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types

from spark_ls import __version__
from spark_ls.actions.catalog import ActionSpec, load_catalog
from spark_ls.config import Settings, load_settings
from spark_ls.model.types import ErrorKind, ModelError, ModelRequest
from spark_ls.server import configuration
from spark_ls.server.capabilities import ResolvedClientCapabilities
from spark_ls.server.configuration import WorkspaceConfiguration
from spark_ls.server.documents import DocumentStore
from spark_ls.server.features import Features
from spark_ls.server.pygls_compat import LanguageServer, SparkProtocol, install
from spark_ls.server.transport import Dispatcher, serve_stdio, serve_tcp, serve_ws

if TYPE_CHECKING:
    from spark_ls.model.session import ModelSession

log = logging.getLogger("spark_ls.server")

_MESSAGE_TYPES = {
    "error": types.MessageType.Error,
    "warning": types.MessageType.Warning,
    "info": types.MessageType.Info,
}


class SparkLanguageServer(LanguageServer):
    """Server state. Mutated only by notifications and start-up; requests read snapshots."""

    protocol: SparkProtocol

    def __init__(self, *, cli_overrides: Mapping[str, object] | None = None) -> None:
        install()
        super().__init__("spark-ls", __version__, protocol_cls=SparkProtocol)
        self.dispatcher = Dispatcher(self.protocol)
        self.features = Features()
        self.cli_overrides: dict[str, object] = dict(cli_overrides or {})
        self.settings: Settings = load_settings(None, self.cli_overrides)
        self.configuration = WorkspaceConfiguration(self.cli_overrides)  # per-folder settings
        self.configuration_reported: set[str] = set()
        self.documents = DocumentStore(settings=self.settings, settings_for=self.settings_for)
        self.catalog: list[ActionSpec] = load_catalog(self.settings)
        self.client = ResolvedClientCapabilities()  # resolved again at initialize
        self.session: ModelSession | None = None
        self.session_ready: asyncio.Future[None] | None = None
        self.session_task: asyncio.Task[None] | None = None
        self.session_problem: str | None = None  # why actions are disabled, if they are
        self.last_latency_ms: float | None = None
        self.last_status: str | None = None  # the state last sent in spark/status
        self.actions_in_flight = 0  # user-started actions running (status "working" while > 0)
        self.last_prompt: tuple[str, str, ModelRequest] | None = None  # (action id, model, request)

    # -- transports (server/transport.py) ---------------------------------------------------
    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
        try:
            return serve_stdio(self.dispatcher, stdin, stdout)
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]  # pygls's, untyped

    def start_tcp(self, host: str, port: int) -> int:  # type: ignore[override]  # returns the exit code
        try:
            return serve_tcp(self.dispatcher, host, port)
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]  # pygls's, untyped

    def start_ws(self, host: str, port: int) -> int:  # type: ignore[override]  # returns the exit code
        try:
            return serve_ws(self.dispatcher, host, port)
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]  # pygls's, untyped

    # -- initialize ---------------------------------------------------------------------------
    def configure(
        self, params: types.InitializeParams, position_encoding: types.PositionEncodingKind | str | None
    ) -> None:
        """Settings of every workspace folder (server/configuration.py); client capabilities, resolved once."""
        self.client = ResolvedClientCapabilities.resolve(params.capabilities, position_encoding)
        self.documents.encoding = self.client.position_encoding
        configuration.initialize(self, params)

    @property
    def encoding(self) -> str:
        """The negotiated position encoding (also in every DocumentSnapshot)."""
        return self.client.position_encoding

    def settings_for(self, uri: str) -> Settings:
        """The settings of the workspace folder containing ``uri``."""
        return self.configuration.settings_for(uri) if self.configuration.resolved else self.settings

    def catalog_for(self, uri: str) -> list[ActionSpec]:
        """The actions of the workspace folder containing ``uri`` (its own user actions)."""
        return self.configuration.catalog_for(uri) or self.catalog

    @property
    def problem(self) -> str | None:
        """Why actions cannot run right now (shown as the reason they are disabled), if they cannot."""
        if self.session_problem:
            return self.session_problem
        return self.session.problem if self.session is not None else None

    # -- user-facing messages --------------------------------------------------------------
    def notify_user(self, level: str, message: str) -> None:
        kind = _MESSAGE_TYPES.get(level, types.MessageType.Log)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"spark-ls: {message}"))

    def send_status(self, state: str, *, action: str | None = None) -> None:
        """spark/status: ready | working (with the action's title) | error."""
        model = self.session.model if self.session is not None else self.settings.model
        params: dict[str, Any] = {"state": state, "model": model, "latencyMs": self.last_latency_ms}
        if action is not None:
            params["action"] = action
        self.last_status = state
        self.protocol.notify("spark/status", params)

    # -- model session -----------------------------------------------------------------------
    def start_session_soon(self) -> None:
        """Warm the model session while the editor finishes its own start-up."""
        self.session_task = asyncio.get_running_loop().create_task(self.start_session())

    async def start_session(self) -> None:
        """Open and warm the model session now, so the first action pays no handshake."""
        from spark_ls.model.session import open_session

        loop = asyncio.get_running_loop()
        self.session_ready = loop.create_future()
        try:
            self.session = open_session(self.settings, notify=self.notify_user)
            if self.settings.uses_local_model:
                self.notify_user(
                    "info",
                    "no model endpoint configured (OPENAI_BASE_URL / OPENAI_API_KEY); using the embedded local model",
                )
            elif not self.settings.tls_verify and not self.settings.replay:
                self.notify_user(
                    "warning",
                    f"TLS certificate verification is OFF for {self.settings.effective_base_url} (tls_verify = false): "
                    "anyone on the network path can read your code and your API key",
                )
            await self.session.start()
            if self.session.problem:
                self.notify_user("error", f"model session unavailable: {self.session.problem}")
                self.send_status("error")
            else:
                self.send_status("ready")
        except Exception as exc:  # noqa: BLE001 - any start-up failure becomes a clear message
            message = exc.message if isinstance(exc, ModelError) else (str(exc) or type(exc).__name__)
            self.session_problem = message
            log.error("model session failed to start: %s", message)
            self.notify_user("error", f"model session unavailable: {message}")
            self.send_status("error")
        finally:
            if not self.session_ready.done():
                self.session_ready.set_result(None)

    async def ready_session(self) -> ModelSession:
        if self.session_ready is not None:
            await asyncio.shield(self.session_ready)
        if self.session is None:
            raise ModelError(ErrorKind.UNAVAILABLE, self.session_problem or "the model session is not running")
        return self.session

    async def close(self, timeout: float = 5.0) -> None:
        """shutdown: cancel features' background work, stop warming, close the session (bounded:
        an editor waits for the shutdown response before it sends exit)."""
        self.features.shutdown()
        if self.session_task is not None and not self.session_task.done():
            self.session_task.cancel()
        if self.session is not None:
            try:
                await asyncio.wait_for(self.session.close(), timeout)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("the model session did not close within %g s; exiting anyway", timeout)
