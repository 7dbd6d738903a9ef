"""The spark-ls language server: capabilities, start-up (warm the model session), registration.

One module per LSP method registers its handler here; handlers stay thin and call the libraries.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
from typing import Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
)
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import ResponseErrorMessage
from pygls.protocol.language_server import lsp_method

from spark_ls import __version__
from spark_ls.netloc import is_loopback_host, is_loopback_origin
from spark_ls.actions.catalog import ActionSpec, load_catalog
from spark_ls.config import Settings, load_settings
from spark_ls.server.configuration import WorkspaceConfiguration
from spark_ls.server.documents import DocumentStore

log = logging.getLogger("spark_ls.server")

_SUPPORTED = (types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf32)


def _prefer_utf8(cls: type, client_capabilities: types.ClientCapabilities) -> str:
    """UTF-8 when the client offers it (tree-sitter's own unit, no conversion), else UTF-16."""
    offered = list((client_capabilities.general and client_capabilities.general.position_encodings) or [])
    if types.PositionEncodingKind.Utf8 in offered:
        return types.PositionEncodingKind.Utf8
    if not offered or types.PositionEncodingKind.Utf16 in offered:
        return types.PositionEncodingKind.Utf16
    return next((e for e in offered if e in _SUPPORTED), types.PositionEncodingKind.Utf16)


ServerCapabilitiesBuilder.choose_position_encoding = classmethod(_prefer_utf8)  # type: ignore[method-assign]


# Far above any real message (a 1,000,000-character document is at most ~4 MB of JSON), far
# below what reading one into memory would cost: a larger Content-Length is skipped, not read.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_DISCARDED = "$/spark-ls/discardedMessage"  # stands in for a skipped message (see below)






_HTTP_REQUEST_LINE = re.compile(rb"^[A-Z]+ \S+ HTTP/\d")


class _FirstLineAgain:
    """An asyncio reader that first returns a line already read from it."""

    def __init__(self, reader: asyncio.StreamReader, first: bytes) -> None:
        self._reader = reader
        self._first: bytes | None = first

    async def readline(self) -> bytes:
        if self._first is not None:
            line, self._first = self._first, None
            return line
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        return await self._reader.readexactly(n)


class _Answered(Exception):
    """A malformed request that already got its error response."""


class SparkProtocol(LanguageServerProtocol):
    """Every request gets a response: one whose params cannot be read is answered with
    InvalidParams for its id, instead of leaving the client waiting forever."""

    def structure_message(self, data: Any) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException:
            msg_id = data.get("id") if isinstance(data, dict) else None
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool) and "method" in data:
                method = str(data.get("method"))[:100]
                self._send_response(
                    msg_id,
                    error=types.ResponseError(
                        code=JsonRpcInvalidParams.CODE, message=f"{method}: the params do not match the LSP types"
                    ),
                )
                raise _Answered(method) from None
            raise

    # spark-ls keeps its own documents (server/documents.py), so pygls's workspace copy is skipped:
    # it cost a second copy and a rebuild per keystroke, and pygls clamps positions past a line's
    # end *in place* in the params (to length - 1, on str.splitlines() lines), which corrupted the
    # text spark-ls then applied. Plain functions, not generators: pygls keeps the future of every
    # generator-handled notification forever (about 1 KiB per keystroke).
    def _to_feature(self, method: str, params: Any) -> None:
        handler = self.fm.features.get(method)
        if handler is not None:
            result = handler(params)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)

    @lsp_method(_DISCARDED)
    def lsp_discarded_message(self, params: Any) -> None:
        size = getattr(params, "bytes", None) or (params.get("bytes") if isinstance(params, dict) else "?")
        message = f"a message of {size} bytes exceeds spark-ls's limit of {MAX_MESSAGE_BYTES} bytes; it was skipped"
        self._send_data(ResponseErrorMessage(id=None, error=types.ResponseError(code=JsonRpcInvalidRequest.CODE, message=message)))

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        self._to_feature(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        self._to_feature(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        self._to_feature(types.TEXT_DOCUMENT_DID_CLOSE, params)


class _ResyncingInput:
    """stdin for pygls.

    - After a message with a wrong Content-Length, the next header arrives glued to leftover bytes
      (``...}Content-Length: 52``) and pygls, matching whole lines, would never see a header
      again. Handing it the header alone resynchronises the stream.
    - A message above MAX_MESSAGE_BYTES is skipped in bounded chunks (pygls would allocate its
      whole length at once, and die on a huge Content-Length); if a message header turns up
      inside the bytes being skipped, the length was a lie and reading resumes there. pygls gets
      a small stand-in message instead, whose handler answers with an error.
    """

    _HEADER = b"Content-Length:"

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._ahead = bytearray()  # bytes read from the stream but not yet handed to pygls
        self._lines: list[bytes] = []  # stand-in lines, served first
        self._body: bytes | None = None  # stand-in body

    def readline(self) -> bytes:
        if self._lines:
            return self._lines.pop(0)
        line = self._raw_line()
        cut = line.rfind(self._HEADER)
        if cut > 0:
            log.warning("discarded %d bytes before a message header (wrong Content-Length?)", cut)
            line = line[cut:]
        if line.startswith(self._HEADER):
            value = line[len(self._HEADER):].strip()
            if value.isdigit() and int(value) > MAX_MESSAGE_BYTES:
                return self._skip(int(value))
        return line

    def read(self, n: int = -1) -> bytes:
        if self._body is not None:
            body, self._body = self._body, None
            return body
        if self._ahead:
            head = bytes(self._ahead[:n])
            del self._ahead[:n]
            return head + (self._raw.read(n - len(head)) if len(head) < n else b"")
        return self._raw.read(n)

    def _raw_line(self) -> bytes:
        if not self._ahead:
            return self._raw.readline()
        end = self._ahead.find(b"\n")
        if end >= 0:
            line = bytes(self._ahead[: end + 1])
            del self._ahead[: end + 1]
            return line
        line = bytes(self._ahead)
        self._ahead.clear()
        return line + self._raw.readline()

    def _available(self, n: int) -> bytes:
        if self._ahead:
            chunk = bytes(self._ahead[:n])
            del self._ahead[:n]
            return chunk
        read1 = getattr(self._raw, "read1", None)
        return read1(n) if read1 is not None else self._raw.read(min(n, 1 << 16))

    def _skip(self, length: int) -> bytes:
        log.warning("skipping a %d-byte message (the limit is %d bytes)", length, MAX_MESSAGE_BYTES)
        while (line := self._raw_line()) and line.strip():
            pass  # the rest of the header block
        remaining, tail = length, b""
        while remaining > 0 and (chunk := self._available(min(remaining, 1 << 20))):
            window = tail + chunk
            found = window.find(self._HEADER)
            if found >= 0:
                self._ahead[:0] = window[found:]  # a real header: resume reading there
                break
            remaining -= len(chunk)
            tail = window[-len(self._HEADER) :]
        self._body = json.dumps({"jsonrpc": "2.0", "method": _DISCARDED, "params": {"bytes": length}}).encode()
        self._lines = [b"\r\n"]
        return b"Content-Length: %d\r\n" % len(self._body)


_CONTENT_LENGTH = re.compile(rb"^Content-Length: (\d+)\r\n$")


def _read_messages(source: Any, stop: threading.Event) -> Any:
    """Yield message bodies framed by Content-Length headers (pygls's framing rules)."""
    content_length = 0
    while not stop.is_set():
        header = source.readline()
        if not header:
            return
        if not content_length:
            match = _CONTENT_LENGTH.fullmatch(header)
            if match:
                content_length = int(match.group(1))
        if content_length and not header.strip():
            body = b""
            while len(body) < content_length:
                chunk = source.read(content_length - len(body))
                if not chunk:
                    return
                body += chunk
            content_length = 0
            yield body


class SparkLanguageServer(LanguageServer):
    """Server state. Mutated only by notifications and start-up; requests read snapshots."""

    def __init__(self, *, cli_overrides: dict[str, Any] | None = None) -> None:
        super().__init__("spark-ls", __version__, protocol_cls=SparkProtocol)
        self.cli_overrides = dict(cli_overrides or {})
        self.settings: Settings = load_settings(None, self.cli_overrides)
        self.configuration = WorkspaceConfiguration(self.cli_overrides)  # per-folder settings
        self.configuration_reported: set[str] = set()
        self.documents = DocumentStore()
        self.catalog: list[ActionSpec] = load_catalog(self.settings)
        self.session: Any = None  # spark_ls.model.session.ModelSession
        self.session_ready: asyncio.Future[None] | None = None
        self.session_problem: str | None = None  # why actions are disabled, if they are
        self.encoding: str = types.PositionEncodingKind.Utf16
        self.last_latency_ms: float | None = None
        self.last_status: str | None = None  # the state last sent in spark/status
        self.actions_in_flight = 0  # user-started actions running (status "working" while > 0)
        self.last_prompt: tuple[str, str, Any] | None = None  # (action id, model, ModelRequest)
        # Set by feature modules at registration.
        self.diagnostics: Any = None
        self.prefetcher: Any = None
        self.running: Any = None

    # -- client capabilities -------------------------------------------------------------
    @property
    def caps(self) -> types.ClientCapabilities:
        return self.client_capabilities

    def supports_resolve(self) -> bool:
        code_action = self.caps.text_document and self.caps.text_document.code_action
        resolve = code_action and code_action.resolve_support
        return bool(resolve and "edit" in resolve.properties)

    def supports_disabled(self) -> bool:
        code_action = self.caps.text_document and self.caps.text_document.code_action
        return bool(code_action and code_action.disabled_support)

    def supports_llm_tag(self) -> bool:
        code_action = self.caps.text_document and self.caps.text_document.code_action
        tags = code_action and code_action.tag_support
        return bool(tags and types.CodeActionTag.LlmGenerated in tags.value_set)

    def supports_progress(self) -> bool:
        return bool(self.caps.window and self.caps.window.work_done_progress)

    # -- transport robustness ----------------------------------------------------------------
    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """Serve LSP on stdin/stdout.

        pygls reads stdin through the thread pool one header line and one body at a time (three
        thread hand-offs per message). Here one reader thread frames whole messages and hands
        each body to the event loop in a single call: the lightbulb's round trip is dominated
        by that overhead, not by spark-ls's own work.
        """
        import sys

        from pygls.io_ import StdoutWriter

        source = stdin or _ResyncingInput(sys.stdin.buffer)
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        self._stop_event = threading.Event()

        async def serve() -> None:
            loop = asyncio.get_running_loop()
            finished: asyncio.Future[None] = loop.create_future()

            def done() -> None:
                if not finished.done():
                    finished.set_result(None)

            def pump() -> None:
                try:
                    for body in _read_messages(source, self._stop_event):
                        loop.call_soon_threadsafe(self._handle_body, body)
                except (OSError, ValueError) as exc:  # stdin closed under us
                    log.info("stdin closed: %s", exc)
                finally:
                    try:
                        loop.call_soon_threadsafe(done)
                    except RuntimeError:  # the loop is already gone
                        pass

            threading.Thread(target=pump, name="spark-ls-stdin", daemon=True).start()
            await finished

        try:
            asyncio.run(serve())
        except BrokenPipeError:
            log.error("Connection to the client is lost! Shutting down the server.")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def _handle_body(self, body: bytes) -> None:
        try:
            message = json.loads(body, object_hook=self.protocol.structure_message)
            self.protocol.handle_message(message)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad message must not end the server
            log.exception("Unable to handle message")
            self.report_server_error(exc, JsonRpcException)

    def start_tcp(self, host: str, port: int) -> None:
        """pygls's start_tcp, except that a connection opening with an HTTP request line (or
        closing before sending anything) is closed unanswered and does not end the server: a web
        page can POST to 127.0.0.1:PORT (no preflight for text/plain), and its Content-Length
        header would otherwise frame its body as an LSP message."""
        from pygls.io_ import run_async

        self._stop_event = stop_event = threading.Event()

        async def lsp_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            first = await reader.readline()
            if not first or _HTTP_REQUEST_LINE.match(first):
                # Not an LSP client (a web page, or a port probe that sent nothing): keep serving.
                if first:
                    log.warning("refused an HTTP request on the LSP port: %r", first[:100])
                writer.close()
                return
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            await run_async(
                stop_event=stop_event, reader=_FirstLineAgain(reader, first), protocol=self.protocol,  # type: ignore[arg-type]
                logger=log, error_handler=self.report_server_error,
            )
            self.shutdown()

        async def tcp_server() -> None:
            self._server = await asyncio.start_server(lsp_connection, host, port)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(tcp_server())
        except asyncio.CancelledError:
            pass

    def start_ws(self, host: str, port: int) -> None:
        """pygls's start_ws, except that on a loopback address a browser page from another site
        (any Origin that is not localhost/127.x/::1) is refused: otherwise any web page the user
        visits could drive spark-ls (and spend their model key) through ws://127.0.0.1."""
        from http import HTTPStatus

        from pygls.io_ import run_websocket
        from websockets.asyncio.server import serve

        guard_origin = is_loopback_host(host)
        self._stop_event = stop_event = threading.Event()

        def check_origin(connection: Any, request: Any) -> Any:
            origin = request.headers.get("Origin")
            if guard_origin and origin is not None and not is_loopback_origin(origin):
                log.warning("refused a WebSocket connection from origin %r", origin[:200])
                return connection.respond(HTTPStatus.FORBIDDEN, "spark-ls: connections from web pages are refused\n")
            return None

        async def lsp_connection(websocket: Any) -> None:
            await run_websocket(
                stop_event=stop_event, websocket=websocket, protocol=self.protocol, logger=log,
                error_handler=self.report_server_error,
            )
            self.shutdown()

        async def ws_server() -> None:
            self._server = await serve(lsp_connection, host, port, process_request=check_origin)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(ws_server())
        except asyncio.CancelledError:
            pass

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, _Answered):
            log.warning("answered a request with unreadable params: %s", error)
            return
        if source is JsonRpcException:
            # A message that could not be read at all (not JSON, not an object): JSON-RPC's answer
            # is an error with a null id. The editor is not shown a popup for a protocol problem.
            invalid_json = isinstance(error, ValueError)  # JSONDecodeError, UnicodeDecodeError
            code = JsonRpcParseError.CODE if invalid_json else JsonRpcInvalidRequest.CODE
            what = "not valid JSON" if invalid_json else "not a JSON-RPC message"
            log.warning("unreadable message (%s): %s", what, error)
            try:
                self.protocol._send_data(
                    ResponseErrorMessage(id=None, error=types.ResponseError(code=code, message=f"message {what}: {error}"[:300]))
                )
            except Exception:  # noqa: BLE001 - never fail while reporting a failure
                log.warning("could not send the error response")
            return
        super().report_server_error(error, source)

    @property
    def problem(self) -> str | None:
        """Why actions cannot run right now (shown as the reason they are disabled), if they cannot."""
        return self.session_problem or getattr(self.session, "problem", None)

    # -- user-facing messages --------------------------------------------------------------
    def notify_user(self, level: str, message: str) -> None:
        kind = {
            "error": types.MessageType.Error,
            "warning": types.MessageType.Warning,
            "info": types.MessageType.Info,
        }.get(level, types.MessageType.Log)
        self.window_show_message(types.ShowMessageParams(type=kind, message=f"spark-ls: {message}"))

    def send_status(self, state: str, *, action: str | None = None) -> None:
        """spark/status: ready | working (with the action's title) | error."""
        model = getattr(self.session, "model", self.settings.model) if self.session else self.settings.model
        params: dict[str, Any] = {"state": state, "model": model, "latencyMs": self.last_latency_ms}
        if action is not None:
            params["action"] = action
        self.last_status = state
        self.protocol.notify("spark/status", params)

    # -- model session -----------------------------------------------------------------------
    def configure(self, params: types.InitializeParams) -> None:
        from spark_ls.server import configuration

        configuration.initialize(self, params)

    def settings_for(self, uri: str) -> Settings:
        """The settings of the workspace folder containing ``uri``."""
        return self.configuration.settings_for(uri) if self.configuration.resolved else self.settings

    def catalog_for(self, uri: str) -> list[ActionSpec]:
        """The actions of the workspace folder containing ``uri`` (its own user actions)."""
        return self.configuration.catalog_for(uri) or self.catalog

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
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.session_problem = message
            log.error("model session failed to start: %s", message)
            self.notify_user("error", f"model session unavailable: {message}")
            self.send_status("error")
        finally:
            if not self.session_ready.done():
                self.session_ready.set_result(None)

    async def ready_session(self) -> Any:
        from spark_ls.model.types import ModelError

        if self.session_ready is not None:
            await asyncio.shield(self.session_ready)
        if self.session is None:
            raise ModelError("unavailable", self.session_problem or "the model session is not running")
        return self.session


def create_server(cli_overrides: dict[str, Any] | None = None) -> SparkLanguageServer:
    from spark_ls.server import (
        code_action,
        code_action_resolve,
        configuration,
        diagnostics,
        execute_command,
        last_prompt,
        lifecycle,
        text_sync,
    )

    server = SparkLanguageServer(cli_overrides=cli_overrides)
    for module in (lifecycle, configuration, text_sync, diagnostics, code_action, code_action_resolve, execute_command,
                   last_prompt):
        module.register(server)
    from spark_ls.server import inline_completion, next_edit  # inline completions + spark/nextEdit (#13)

    inline_completion.register(server)
    next_edit.register(server)
    return server
