"""spark-ls command line: serve | check | model-server | models | --version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any, Sequence

from spark_ls import __version__
from spark_ls.netloc import is_loopback_host

LOOPBACK_HINT = "use --allow-remote to listen on a non-loopback address (anyone who can reach it can use your model key)"


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _session_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings given on the command line (highest priority)."""
    overrides: dict[str, Any] = {}
    for name in ("model", "base_url", "transport", "record", "replay", "edit_format"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "fallback_models", None):
        overrides["fallback_models"] = args.fallback_models
    if getattr(args, "pin", False):
        overrides["pin"] = True
    if getattr(args, "insecure", False):
        overrides["tls_verify"] = False
    return overrides


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", help="model name (default gpt-5.3-codex-spark; env SPARK_LS_MODEL)")
    group.add_argument("--fallback-models", help="comma-separated models to use, in order, if the model is retired")
    group.add_argument("--pin", action="store_true", help="never switch models: stop with a message if retired")
    group.add_argument("--base-url", help="OpenAI-compatible base URL (env OPENAI_BASE_URL); key from OPENAI_API_KEY")
    group.add_argument("--transport", choices=["auto", "ws", "responses", "chat", "local"])
    group.add_argument("--edit-format", choices=["auto", "diff", "scope"])
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


def _models(args: argparse.Namespace) -> int:
    from spark_ls.config import load_settings
    from spark_ls.model.session import format_models, list_models
    from spark_ls.model.types import ModelError

    settings = load_settings(os.getcwd(), _session_overrides(args))
    try:
        statuses = asyncio.run(list_models(settings))
    except ModelError as exc:
        print(f"spark-ls: {exc.message}", file=sys.stderr)
        return 2
    print(format_models(statuses))
    return 0


def _model_server(args: argparse.Namespace) -> int:
    from spark_ls.config import load_settings
    from spark_ls.model.server import serve_model_server

    host, port = args.listen
    if not is_loopback_host(host) and not args.allow_remote:
        print(f"spark-ls: refusing to listen on {host}: {LOOPBACK_HINT}", file=sys.stderr)
        return 2
    settings = load_settings(os.getcwd(), _session_overrides(args))
    try:
        asyncio.run(
            serve_model_server(
                settings,
                host=host,
                port=port,
                allow_remote=args.allow_remote,
                ready=lambda url: print(f"spark-ls model-server listening on {url}", flush=True),
            )
        )
    except KeyboardInterrupt:
        pass
    return 0


def _check(args: argparse.Namespace) -> int:
    from spark_ls.check import run_check

    return run_check(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spark-ls",
        description="AI code actions for any editor, and the same engine headless for CI.",
    )
    parser.add_argument("--version", action="version", version=f"spark-ls {__version__}")
    parser.add_argument("--log-level", default=os.environ.get("SPARK_LS_LOG", "WARNING"), help="logging level (stderr)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the language server (stdio by default)")
    transport = serve.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="speak LSP on stdin/stdout (default)")
    transport.add_argument("--tcp", type=_host_port, metavar="HOST:PORT", help="listen for one LSP client over TCP")
    transport.add_argument("--ws", type=_host_port, metavar="HOST:PORT", help="serve LSP over WebSocket")
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --tcp/--ws address")
    add_model_arguments(serve)
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check", help="run code actions headless over files (CI)")
    from spark_ls.check import add_check_arguments

    add_check_arguments(check)
    add_model_arguments(check)
    check.set_defaults(func=_check)

    models = sub.add_parser("models", help="list configured models and check them against the endpoint")
    add_model_arguments(models)
    models.set_defaults(func=_models)

    model_server = sub.add_parser(
        "model-server", help="serve the embedded local model over the Responses WebSocket protocol (and HTTP SSE)"
    )
    model_server.add_argument("--listen", type=_host_port, default=("127.0.0.1", 8765), metavar="HOST:PORT")
    model_server.add_argument("--allow-remote", action="store_true", help="allow a non-loopback address")
    add_model_arguments(model_server)
    model_server.set_defaults(func=_model_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    return int(args.func(args) or 0)
