"""Minimal HTTP/1.1 on asyncio streams, shared by the model server and the tests' fake model
endpoint (tests/model_endpoint.py): request heads, JSON responses, SSE over chunked encoding,
and OpenAI-shaped error bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

REASONS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, path, headers with lower-case names) of a request head (without the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "/")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return method, path, headers


async def write_json(
    writer: asyncio.StreamWriter, status: int, obj: Any, extra: Mapping[str, str] | None = None
) -> bool:
    """A complete JSON response (with any extra headers); True, so a handler can `return` it."""
    data = json.dumps(obj).encode()
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    for name, value in (extra or {}).items():
        head += f"{name}: {value}\r\n"
    writer.write(head.encode() + b"\r\n" + data)
    await writer.drain()
    return True


async def start_sse(writer: asyncio.StreamWriter) -> None:
    """The head of a server-sent-events response; the body follows in :func:`chunk` calls."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    await writer.drain()


async def chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    """One HTTP/1.1 chunk; empty data ends the body."""
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


def error_body(etype: str, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: {"error": {type, code, message, param}}."""
    return {"error": {"type": etype, "code": code, "message": message, "param": param}}


def error_event(status: int, etype: str, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """A Responses WebSocket `error` event."""
    return {"type": "error", "status": status, **error_body(etype, code, message, param)}
