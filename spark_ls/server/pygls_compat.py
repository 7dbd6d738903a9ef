"""Everything spark-ls changes in or relies on inside pygls, in one place.

pygls 2 is used for what it does well (types, the feature manager, request bookkeeping,
progress, cancellation); a few of its internals are overridden here, each for a reason given
below. :func:`check_compatible` verifies that the internals these overrides depend on still
exist with the expected shape, so an incompatible pygls release fails loudly (in
tests/test_pygls_compat.py, run by CI) instead of misbehaving quietly.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.capabilities import ServerCapabilitiesBuilder
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
)
from pygls.io_ import StdoutWriter, WebSocketWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger("spark_ls.server")

# The pygls versions these overrides were written against (checked by check_compatible).
PYGLS_SUPPORTED = ((2, 0), (2, 2))  # [from, until)

REQUEST_FAILED = -32803  # LSP RequestFailed

# Far above any real message (a 1,000,000-character document is at most ~4 MB of JSON), far
# below what reading one into memory would cost: a larger Content-Length is skipped, not read.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DISCARDED = "$/spark-ls/discardedMessage"  # stands in for a skipped message (server/transport.py)

__all__ = [
    "DISCARDED",
    "MAX_MESSAGE_BYTES",
    "PYGLS_SUPPORTED",
    "REQUEST_FAILED",
    "Answered",
    "LanguageServer",
    "SparkProtocol",
    "StdoutWriter",
    "WebSocketWriter",
    "check_compatible",
    "install",
]

_SUPPORTED_ENCODINGS = (
    types.PositionEncodingKind.Utf8,
    types.PositionEncodingKind.Utf16,
    types.PositionEncodingKind.Utf32,
)


def _prefer_utf8(cls: type, client_capabilities: types.ClientCapabilities) -> str:
    """UTF-8 when the client offers it (tree-sitter's own unit, no conversion), else UTF-16."""
    offered = list((client_capabilities.general and client_capabilities.general.position_encodings) or [])
    if types.PositionEncodingKind.Utf8 in offered:
        return types.PositionEncodingKind.Utf8
    if not offered or types.PositionEncodingKind.Utf16 in offered:
        return types.PositionEncodingKind.Utf16
    return next((e for e in offered if e in _SUPPORTED_ENCODINGS), types.PositionEncodingKind.Utf16)


class _ExpectedEvents(logging.Filter):
    """pygls logs expected outcomes with a full traceback at ERROR: a failed request (a refused
    edit or a model error, already logged by spark-ls as one readable line) and a message whose
    params do not match the LSP types (answered with InvalidParams, logged by spark-ls at WARNING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, JsonRpcException) and exc.code == REQUEST_FAILED:
            return False
        return not (isinstance(record.msg, str) and record.msg.startswith("Unable to deserialize message"))


_installed = False


def install() -> None:
    """Apply the process-wide patches (idempotent): UTF-8 position encoding first, quiet logs."""
    global _installed
    if _installed:
        return
    _installed = True
    ServerCapabilitiesBuilder.choose_position_encoding = classmethod(_prefer_utf8)  # type: ignore[method-assign,assignment]
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_ExpectedEvents())


class Answered(Exception):
    """A malformed request that already got its error response."""


class SparkProtocol(LanguageServerProtocol):
    """pygls's protocol with four changes:

    - every request gets a response: one whose params cannot be read is answered with
      InvalidParams for its id, instead of leaving the client waiting forever;
    - text sync bypasses pygls's workspace (see ``_to_feature``);
    - ``exit`` ends the transport and records the exit code instead of calling ``sys.exit`` from
      inside the event loop (which aborted the process while the stdin reader held its lock, and
      logged "Unhandled exception ... SystemExit" over TCP);
    - a stand-in message for a skipped oversized one is answered with an error.
    """

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.exit_code: int | None = None
        self.on_exit: Callable[[int], None] | None = None

    @property
    def converter(self) -> Any:
        """pygls's cattrs converter (LSP types <-> JSON), for the transport's lean path."""
        return self._converter

    @property
    def shutdown_requested(self) -> bool:
        return bool(self._shutdown)

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
                raise Answered(method) from None
            raise

    def send_error(self, code: int, message: str) -> None:
        """A JSON-RPC error response with a null id (for a message that could not be read)."""
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
        self.send_raw(json.dumps(error).encode())

    def send_raw(self, body: bytes) -> None:
        """Write one already-serialised JSON-RPC message (the transport's lean path)."""
        writer = self.writer
        if writer is None:
            return
        if self._include_headers:
            body = b"Content-Length: %d\r\n\r\n" % len(body) + body
        result = writer.write(body)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result)

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

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]  # a plain function: no generator needed
        """Stops the server: 0 after a shutdown request, 1 without (LSP's rule)."""
        self.exit_code = 0 if self._shutdown else 1
        if self.on_exit is not None:
            self.on_exit(self.exit_code)

    @lsp_method(DISCARDED)
    def lsp_discarded_message(self, params: Any) -> None:
        size = getattr(params, "bytes", None) or (params.get("bytes") if isinstance(params, dict) else "?")
        message = f"a message of {size} bytes exceeds spark-ls's limit of {MAX_MESSAGE_BYTES} bytes; it was skipped"
        self.send_error(JsonRpcInvalidRequest.CODE, message)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        self._to_feature(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        self._to_feature(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        self._to_feature(types.TEXT_DOCUMENT_DID_CLOSE, params)


def _problems(full: bool) -> Iterator[str]:
    """What is missing or changed in the installed pygls, for each internal spark-ls relies on."""
    from importlib.metadata import version

    from pygls.protocol import json_rpc

    try:
        parts = tuple(int(p) for p in version("pygls").split(".")[:2])
    except (ValueError, LookupError):
        parts = (0, 0)
    low, high = PYGLS_SUPPORTED
    if not (low <= parts < high):
        yield f"pygls {version('pygls')} is outside the tested range >={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    if not full:
        return
    expectations: list[tuple[object, str]] = [
        (LanguageServerProtocol, "structure_message"),
        (LanguageServerProtocol, "handle_message"),
        (LanguageServerProtocol, "_send_response"),
        (LanguageServerProtocol, "_send_data"),
        (LanguageServerProtocol, "set_writer"),
        (LanguageServerProtocol, "_register_builtin_features"),
        (LanguageServerProtocol, "lsp_exit"),
        (LanguageServerProtocol, "lsp_text_document__did_open"),
        (LanguageServerProtocol, "lsp_text_document__did_change"),
        (LanguageServerProtocol, "lsp_text_document__did_close"),
        (ServerCapabilitiesBuilder, "choose_position_encoding"),
        (LanguageServer, "report_server_error"),
        (LanguageServer, "shutdown"),
    ]
    for owner, name in expectations:
        if not hasattr(owner, name):
            yield f"{getattr(owner, '__name__', owner)}.{name} is gone"
    for name in ("structure_message", "_send_response", "_send_data"):
        if not hasattr(LanguageServerProtocol, name):
            continue
        params = list(inspect.signature(getattr(LanguageServerProtocol, name)).parameters)
        if len(params) < 2:
            yield f"LanguageServerProtocol.{name} changed its signature: {params}"
    init = inspect.signature(LanguageServerProtocol.__init__).parameters
    if list(init)[:3] != ["self", "server", "converter"]:
        yield f"LanguageServerProtocol.__init__ changed its signature: {list(init)}"
    source = inspect.getsource(LanguageServerProtocol.lsp_initialize)
    if "choose_position_encoding" not in source:
        yield "pygls no longer negotiates the position encoding through choose_position_encoding"
    for attr in ("_shutdown", "_include_headers", "writer", "fm", "_request_futures", "_converter"):
        if attr not in inspect.getsource(json_rpc.JsonRPCProtocol.__init__):
            yield f"JsonRPCProtocol no longer sets self.{attr}"


def check_compatible(*, full: bool = True) -> list[str]:
    """Every incompatibility between the installed pygls and spark-ls's overrides (empty if none).
    ``full=False`` checks only the version (cheap enough for every start-up; the full check reads
    pygls's source and runs in tests/test_pygls_compat.py)."""
    return list(_problems(full))
