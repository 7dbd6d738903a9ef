"""Build the language server: its state (app.py), its features, and one module per LSP method.

This is the only module that knows every handler; handlers know only the server's type.
"""

from __future__ import annotations

from collections.abc import Mapping

from spark_ls.server import (
    code_action,
    code_action_resolve,
    configuration,
    execute_command,
    inline_completion,
    last_prompt,
    lifecycle,
    next_edit,
    text_sync,
)
from spark_ls.server.app import SparkLanguageServer
from spark_ls.server.diagnostics import DiagnosticsPublisher
from spark_ls.server.engine import Prefetcher
from spark_ls.server.prompt_warming import PromptWarming

HANDLER_MODULES = (
    lifecycle,
    configuration,
    text_sync,
    code_action,
    code_action_resolve,
    execute_command,
    last_prompt,
    inline_completion,  # inline completions + spark/nextEdit (#13)
    next_edit,
)


def create_server(cli_overrides: Mapping[str, object] | None = None) -> SparkLanguageServer:
    """The server, ready to serve. (pygls compatibility is checked by tests/test_pygls_compat.py,
    not here: reading pygls's metadata and source would cost ~40 ms of every start-up.)"""
    server = SparkLanguageServer(cli_overrides=cli_overrides)
    server.features.add(DiagnosticsPublisher(server.documents, server.text_document_publish_diagnostics))
    server.features.add(Prefetcher(server))
    server.features.add(PromptWarming(server))
    for module in HANDLER_MODULES:
        module.register(server)
    return server
