"""spark-ls command line: serve | check | config | models | model-server | --version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spark_ls import __version__
from spark_ls.config import EDIT_FORMATS, TRANSPORTS, command_line_overrides
from spark_ls.netloc import is_loopback_host

LOOPBACK_HINT = "use --allow-remote to listen on a non-loopback address (anyone who can reach it can use your model key)"


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _session_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings given on the command line (highest priority)."""
    return command_line_overrides(args)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="model name (default gpt-5.3-codex-spark; env SPARK_LS_MODEL)")
    group.add_argument("--fallback-models", metavar="MODELS", help="comma-separated models to use, in order, if the model is retired")
    group.add_argument("--pin", action="store_true", help="never switch models: stop with a message if retired")
    group.add_argument("--base-url", help="OpenAI-compatible base URL (env OPENAI_BASE_URL); key from OPENAI_API_KEY")
    group.add_argument(
        "--transport", choices=TRANSPORTS,
        help="how to reach the model: ws (Responses over WebSocket), responses (HTTP SSE), chat (Chat "
             "Completions), local (embedded model); auto (default): ws with HTTP fallback, or the embedded "
             "model when no endpoint/key is set (env SPARK_LS_TRANSPORT)")
    group.add_argument(
        "--edit-format", choices=EDIT_FORMATS,
        help="how the model writes edits: diff (unified diff) or scope (the rewritten function, diffed by "
             "spark-ls; for small local models and `spark-ls model-server`); auto (default): scope for the "
             "embedded model, diff otherwise (env SPARK_LS_EDIT_FORMAT)")
    group.add_argument("--record", metavar="FILE", help="record model exchanges to a cassette")
    group.add_argument("--replay", metavar="FILE", help="answer model requests from a cassette (no endpoint)")
    group.add_argument("--insecure", action="store_true", help="do not verify TLS certificates (logs a warning)")


def _serve(args: argparse.Namespace) -> int:
    from spark_ls.server.main import create_server

    server = create_server(_session_overrides(args))
    if args.tcp or args.ws:
        host, port = args.tcp or args.ws
        if not is_loopback_host(host) and not args.allow_remote:
            print(f"spark-ls: refusing to listen on {host}: {LOOPBACK_HINT}", file=sys.stderr)
            return 2
        if args.tcp:
            return server.start_tcp(host, port)
        return server.start_ws(host, port)
    return server.start_io()


def _cli_settings(args: argparse.Namespace, workspace: str | None = None) -> Any:
    """Settings for a command: env < the workspace's file < command line; problems on stderr."""
    from spark_ls.config import resolve_settings

    result = resolve_settings(workspace or os.getcwd(), cli=_session_overrides(args))
    for problem in result.problems:
        print(f"spark-ls: warning: {problem}", file=sys.stderr)
    return result.settings


def _models(args: argparse.Namespace) -> int:
    from spark_ls.model.session import format_models, list_models
    from spark_ls.model.types import ModelError

    settings = _cli_settings(args)
    try:
        statuses = asyncio.run(list_models(settings))
    except ModelError as exc:
        print(f"spark-ls: {exc.message}", file=sys.stderr)
        return 2
    print(format_models(statuses))
    return 0


def _model_server(args: argparse.Namespace) -> int:
    from spark_ls.model_server.server import serve_model_server

    host, port = args.listen
    if not is_loopback_host(host) and not args.allow_remote:
        print(f"spark-ls: refusing to listen on {host}: {LOOPBACK_HINT}", file=sys.stderr)
        return 2
    settings = _cli_settings(args)

    def ready(url: str) -> None:
        print(f"spark-ls model-server listening on {url}", flush=True)
        # A small local model edits reliably only by rewriting the whole function (scope format).
        print(f"use it with: OPENAI_BASE_URL={url} SPARK_LS_EDIT_FORMAT=scope", flush=True)

    try:
        asyncio.run(
            serve_model_server(settings, host=host, port=port, allow_remote=args.allow_remote, ready=ready)
        )
    except KeyboardInterrupt:
        pass
    return 0


def _config(args: argparse.Namespace) -> int:
    import json

    from spark_ls.config import (
        FIELDS,
        UNTRUSTED_WORKSPACE_KEYS,
        display_value,
        resolve_settings,
        workspace_layers,
    )

    if args.schema:
        from spark_ls.settings_schema import render_schema

        sys.stdout.write(render_schema())
        return 0
    folder = Path(args.path).resolve()
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        print(f"spark-ls config: error: {args.path}: not a directory", file=sys.stderr)
        return 2
    result = resolve_settings(folder, cli=_session_overrides(args))
    layers, _ = workspace_layers(folder)
    source = layers[0].where if layers else None
    if args.json:
        out = {
            "workspace": str(folder),
            "config_file": source,
            "settings": {
                name: {"value": display_value(name, getattr(result.settings, name)), "source": result.sources[name]}
                for name in FIELDS
            },
            "problems": list(result.problems),
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"# spark-ls settings for {folder}")
        print(f"# config file: {source or 'none (spark-ls.toml, or [tool.spark-ls] in pyproject.toml)'}")
        print(f"# only from the environment, editor or command line: {', '.join(sorted(UNTRUSTED_WORKSPACE_KEYS))}")
        rows = [(name, json.dumps(display_value(name, getattr(result.settings, name))), result.sources[name])
                for name in FIELDS]
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        for name, value, where in rows:
            print(f"{name.ljust(width[0])} = {value.ljust(min(width[1], 40))}  # {where}")
    for problem in result.problems:
        print(f"spark-ls config: warning: {problem}", file=sys.stderr)
    return 1 if result.problems else 0


def _check(args: argparse.Namespace) -> int:
    from spark_ls.check import run_check

    return run_check(args)


def _add_logging_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the subcommand; the subcommand's value wins.
    default: Any = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level", metavar="LEVEL", default=default, help="DEBUG, INFO, WARNING (default; env SPARK_LS_LOG) "
        "or ERROR; DEBUG also logs each prompt sent (key masked)")
    group.add_argument("--log-file", metavar="FILE", default=default, help="append the log to FILE instead of stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spark-ls",
        description="AI code actions for any editor, and the same engine headless for CI.",
    )
    parser.add_argument("--version", action="version", version=f"spark-ls {__version__}")
    _add_logging_arguments(parser, top=True)
    parser.set_defaults(log_level=os.environ.get("SPARK_LS_LOG", "WARNING"), log_file=None)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    transport = serve.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (default)")
    transport.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="listen for one LSP client over TCP")
    transport.add_argument("--ws", type=_host_port, metavar="HOST:PORT", help="serve LSP over WebSocket")
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --tcp/--ws address")
    add_model_arguments(serve)
    _add_logging_arguments(serve, top=False)
    serve.set_defaults(func=_serve)

    from spark_ls.check import add_check_arguments
    from spark_ls.check.command import CHECK_EPILOG

    check = sub.add_parser(
        "check", help="run code actions headless over files (CI)", epilog=CHECK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_check_arguments(check)
    add_model_arguments(check)
    _add_logging_arguments(check, top=False)
    check.set_defaults(func=_check)

    config = sub.add_parser(
        "config", help="print the effective settings and where each came from",
        description="Print the settings spark-ls uses for a workspace folder and where each value came from "
                    "(default, environment, the folder's spark-ls.toml / pyproject.toml [tool.spark-ls], command "
                    "line). Problems (unknown keys, bad values) go to stderr. Exit 0, or 1 if there were problems.",
    )
    config.add_argument("path", nargs="?", default=".", metavar="PATH", help="the workspace folder (default: .)")
    config.add_argument("--json", action="store_true", help="print JSON (values, sources, problems)")
    config.add_argument("--schema", action="store_true",
                        help="print the JSON schema of [tool.spark-ls] / spark-ls.toml and exit")
    add_model_arguments(config)
    _add_logging_arguments(config, top=False)
    config.set_defaults(func=_config)

    models = sub.add_parser("models", help="list configured models and check them against the endpoint")
    add_model_arguments(models)
    _add_logging_arguments(models, top=False)
    models.set_defaults(func=_models)

    model_server = sub.add_parser(
        "model-server", help="serve the embedded local model over the Responses WebSocket protocol (and HTTP SSE)"
    )
    model_server.add_argument(
        "--listen", type=_host_port, default=("127.0.0.1", 8765), metavar="HOST:PORT",
        help="address to listen on (default 127.0.0.1:8765; port 0 picks a free one; non-loopback needs "
             "--allow-remote)")
    model_server.add_argument("--allow-remote", action="store_true", help="allow a non-loopback address")
    add_model_arguments(model_server)
    _add_logging_arguments(model_server, top=False)
    model_server.set_defaults(func=_model_server)
    return parser


def _setup_logging(level_name: str, log_file: str | None) -> None:
    level = getattr(logging, str(level_name).upper(), None)
    if not isinstance(level, int):
        print(f"spark-ls: unknown --log-level {level_name!r}; using WARNING", file=sys.stderr)
        level = logging.WARNING
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _setup_logging(args.log_level, args.log_file)
    except OSError as exc:
        print(f"spark-ls: --log-file {args.log_file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)
