"""Per-request round-trip overhead of the model transports, for a tiny reply, over TLS on loopback.

All three use the real spark-ls transports (or httpx for the per-request connection) against
tests/model_endpoint.py serving TLS with a self-signed certificate generated here:
- WebSocket: the session's persistent, pre-warmed ``wss://`` socket;
- SSE keep-alive: Responses over HTTP SSE on one keep-alive HTTPS connection;
- SSE new connection: the same request with a fresh TCP + TLS connection each time
  (``Connection: close``), which is what a client without connection reuse pays.
Methods are interleaved per round so machine noise hits all of them alike.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

TITLE = "model transport round-trip overhead (tiny reply, TLS on loopback)"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from model_endpoint import ModelEndpoint

from spark_ls.config import Settings
from spark_ls.model import ModelRequest, open_session

REPLY = "ok"


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000.0


async def _measure(rounds: int, startups: int, endpoint: ModelEndpoint) -> dict[str, Any]:
    # The certificate is self-signed: verification off on every path alike (and its warning muted).
    logging.getLogger("spark_ls").setLevel(logging.ERROR)
    base = Settings(base_url=endpoint.base_url, tls_verify=False, pool_size=1, request_timeout=30.0)
    request = ModelRequest("reply ok", "tiny task")

    # Start-up: several fresh sessions, started (warmed) or not, timing their first request.
    start_ms: list[float] = []
    first_ms: list[float] = []
    cold_first_ms: list[float] = []
    for _ in range(startups):
        warm = open_session(base.merged({"transport": "ws"}))
        start_ms.append(await _timed(warm.start))
        first_ms.append(await _timed(lambda s=warm: s.complete(request)))
        await warm.close()
        cold = open_session(base.merged({"transport": "ws"}))
        cold_first_ms.append(await _timed(lambda s=cold: s.complete(request)))  # no start(): pays the handshake
        await cold.close()
    ws_session = open_session(base.merged({"transport": "ws"}))
    await ws_session.start()
    sse_session = open_session(base.merged({"transport": "responses"}))
    await sse_session.start()
    await sse_session.complete(request)  # open its keep-alive connection
    body = {"model": base.model, "instructions": "reply ok", "input": "tiny task", "stream": True, "store": False}
    fresh_client = httpx.AsyncClient(verify=False, headers={"Connection": "close"})

    async def new_connection() -> None:
        async with fresh_client.stream("POST", endpoint.base_url + "/responses", json=body) as response:
            async for _ in response.aiter_bytes():
                pass

    await new_connection()
    samples: dict[str, list[float]] = {"ws": [], "sse_keepalive": [], "sse_new_connection": []}
    for _ in range(rounds):
        samples["ws"].append(await _timed(lambda: ws_session.complete(request)))
        samples["sse_keepalive"].append(await _timed(lambda: sse_session.complete(request)))
        samples["sse_new_connection"].append(await _timed(new_connection))
    stats = {
        "ws_start_ms": statistics.median(start_ms),
        "ws_first_ms": statistics.median(first_ms),
        "ws_cold_first_ms": statistics.median(cold_first_ms),
        "startups": startups,
        "ws_connections": ws_session.stats["connections_opened"],
    }
    await ws_session.close()
    await sse_session.close()
    await fresh_client.aclose()
    return {"samples": samples, **stats}


def run(quick: bool) -> dict:
    rounds = 40 if quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        context = _self_signed(Path(tmp))
        with ModelEndpoint(ssl_context=context) as endpoint:
            endpoint.reply_for = lambda _body: REPLY
            result = asyncio.run(_measure(rounds, 5 if quick else 15, endpoint))
    samples = result["samples"]
    medians = {name: statistics.median(values) for name, values in samples.items()}
    p90 = {name: statistics.quantiles(values, n=10)[-1] for name, values in samples.items()}
    labels = {
        "ws": "WebSocket (persistent, pre-warmed)",
        "sse_keepalive": "Responses SSE, HTTPS keep-alive",
        "sse_new_connection": "Responses SSE, new HTTPS connection per request",
    }
    rows = [
        {
            "transport": labels[name],
            "median_ms": medians[name],
            "p90_ms": p90[name],
            "vs_ws": medians[name] / medians["ws"],
            "requests": len(samples[name]),
        }
        for name in samples
    ]
    below_new = 1 - medians["ws"] / medians["sse_new_connection"]
    below_keepalive = 1 - medians["ws"] / medians["sse_keepalive"]
    first_vs_steady = result["ws_first_ms"] / medians["ws"]
    handshake_ms = medians["sse_new_connection"] - medians["sse_keepalive"]
    n = result["startups"]
    rows.append(
        {"transport": "WebSocket start(): connect + TLS + upgrade + warm-up", "median_ms": result["ws_start_ms"], "p90_ms": "", "vs_ws": "", "requests": n}
    )
    rows.append(
        {"transport": "first request after start() (pre-warmed)", "median_ms": result["ws_first_ms"], "p90_ms": "", "vs_ws": first_vs_steady, "requests": n}
    )
    rows.append(
        {
            "transport": "first request without start() (cold: handshake included)",
            "median_ms": result["ws_cold_first_ms"],
            "p90_ms": "",
            "vs_ws": result["ws_cold_first_ms"] / medians["ws"],
            "requests": n,
        }
    )
    return {
        "rows": rows,
        "notes": [
            f"WebSocket median is {below_new:.0%} below a new HTTPS connection per request and {below_keepalive:.0%} below HTTPS keep-alive SSE.",
            (
                f"A fresh TCP+TLS connection costs about {handshake_ms:.2f} ms here. The first request after start() took "
                f"{result['ws_first_ms']:.2f} ms (median of {n} fresh sessions; {first_vs_steady:.1f}x the steady median, "
                f"no handshake) against {result['ws_cold_first_ms']:.2f} ms without start()."
            ),
            f"The WebSocket session opened {result['ws_connections']} connection(s) for {len(samples['ws']) + 1} requests.",
            (
                "Loopback with a self-signed certificate (verification off on every path): real network RTTs add to the "
                "handshake, so the gap grows with distance to the endpoint."
            ),
        ],
        "targets": [
            ("WebSocket round trip >= 80% below a new HTTPS connection per request", below_new >= 0.80),
            ("WebSocket round trip >= 30% below HTTPS keep-alive SSE", below_keepalive >= 0.30),
            (
                "first action after start-up pays no handshake (pre-warmed first request below half the cold one)",
                result["ws_first_ms"] <= result["ws_cold_first_ms"] / 2,
            ),
        ],
    }
