"""Per-request round-trip overhead of the model transports, for a tiny reply, on loopback.

The endpoint is tests/model_endpoint.py (the real Responses WebSocket/SSE protocols) running in a
separate process, one plain and one TLS (self-signed certificate generated here), so client and
server do not share a GIL. Measured against the same endpoints in the same run:

- a bare ``websockets`` client: one ``response.create`` frame out, ``json.loads`` of every event
  until ``response.completed`` (the least any client can do) — the baseline;
- spark-ls's WebSocket session (``ModelSession.complete`` on a persistent, pre-warmed socket);
- each with and without TLS, and with permessage-deflate off and on (``ws_compression``);
- Responses over HTTP SSE on one keep-alive HTTPS connection, and with a new TCP + TLS connection
  per request (``Connection: close``, what a client without connection reuse pays).

Every method runs once per round, in a rotating order, so machine noise hits all of them alike.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

TITLE = "model transport round-trip overhead (tiny reply, loopback): spark-ls vs a bare websockets client"

ROOT = Path(__file__).resolve().parent.parent
REPLY = "ok"
MODEL = "gpt-5.3-codex-spark"
TARGET_RATIO = 1.2
TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


# ---------------------------------------------------------------------- the endpoint process


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1 (needs ``cryptography``: ``pip install '.[bench]'``)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        raise SystemExit(
            "bench transport needs the 'cryptography' package: pip install '.[bench]'"
        ) from None

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
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _serve(cert: str | None, key: str | None) -> None:
    """Child process: serve the fake endpoint until stdin closes; print the base URL first."""
    sys.path.insert(0, str(ROOT / "tests"))
    from model_endpoint import ModelEndpoint

    context = None
    if cert and key:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    with ModelEndpoint(ssl_context=context) as endpoint:
        endpoint.reply_for = lambda _body: REPLY
        print(endpoint.base_url, flush=True)
        sys.stdin.read()


class _EndpointThread:
    """The same endpoint on a thread of this process (shares the GIL with the client)."""

    def __init__(self, cert: Path | None, key: Path | None) -> None:
        sys.path.insert(0, str(ROOT / "tests"))
        from model_endpoint import ModelEndpoint

        context = None
        if cert and key:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        self.endpoint = ModelEndpoint(ssl_context=context)
        self.endpoint.reply_for = lambda _body: REPLY
        self.endpoint.start()
        self.base_url = self.endpoint.base_url

    def close(self) -> None:
        self.endpoint.stop()


class _EndpointProcess:
    def __init__(self, cert: Path | None, key: Path | None) -> None:
        args = [sys.executable, __file__, "--serve"] + (
            [str(cert), str(key)] if cert and key else []
        )
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        )
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith(("http://", "https://")):
            self.close()
            raise RuntimeError(f"the endpoint process did not start (said {line!r})")
        self.base_url = line

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------- clients


def _client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Bare:
    """The baseline: a websockets client doing only what the protocol requires."""

    def __init__(self, base_url: str, compression: bool) -> None:
        self.url = (
            base_url.replace("https://", "wss://").replace("http://", "ws://")
            + "/responses"
        )
        self.compression = compression
        self.conn: Any = None
        self.frame = json.dumps(
            {
                "type": "response.create",
                "model": MODEL,
                "instructions": "reply ok",
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "tiny task"}],
                    }
                ],
                "store": False,
            }
        )

    async def start(self) -> None:
        from websockets.asyncio.client import connect

        self.conn = await connect(
            self.url,
            compression="deflate" if self.compression else None,
            ssl=_client_tls() if self.url.startswith("wss://") else None,
        )

    async def round_trip(self) -> None:
        await self.conn.send(self.frame)
        while True:
            if json.loads(await self.conn.recv())["type"] in TERMINAL:
                return

    async def close(self) -> None:
        await self.conn.close()


class _SparkLs:
    def __init__(self, base_url: str, compression: bool) -> None:
        from spark_ls.config import Settings
        from spark_ls.model import ModelRequest, open_session

        settings = Settings(
            base_url=base_url,
            tls_verify=False,
            pool_size=1,
            request_timeout=30.0,
            transport="ws",
            ws_compression=compression,
        )
        self.session = open_session(settings)
        self.request = ModelRequest("reply ok", "tiny task")

    async def start(self) -> None:
        await self.session.start()

    async def round_trip(self) -> None:
        await self.session.complete(self.request)

    async def close(self) -> None:
        await self.session.close()


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000.0


async def _timed_cpu(fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(wall ms, this process's CPU ms): the endpoint runs elsewhere, so CPU is the client's own work."""
    started, cpu = time.perf_counter(), time.process_time()
    await fn()
    return (time.perf_counter() - started) * 1000.0, (
        time.process_time() - cpu
    ) * 1000.0


async def _measure(
    rounds: int, startups: int, plain_url: str, tls_url: str
) -> dict[str, Any]:
    import httpx

    from spark_ls.config import Settings
    from spark_ls.model import ModelRequest, open_session

    # The certificate is self-signed: verification off on every path alike (its warning muted by run()).
    clients: dict[str, Any] = {}
    for tls, url in (("plain", plain_url), ("TLS", tls_url)):
        for comp in (False, True):
            label = f"{tls}, deflate {'on' if comp else 'off'}"
            clients[f"bare | {label}"] = _Bare(url, comp)
            clients[f"spark-ls | {label}"] = _SparkLs(url, comp)
    for client in clients.values():
        await client.start()

    request = ModelRequest("reply ok", "tiny task")
    base = Settings(
        base_url=tls_url, tls_verify=False, pool_size=1, request_timeout=30.0
    )
    sse_session = open_session(base.merged({"transport": "responses"}))
    await sse_session.start()
    await sse_session.complete(request)  # open its keep-alive connection
    body = {
        "model": MODEL,
        "instructions": "reply ok",
        "input": "tiny task",
        "stream": True,
        "store": False,
    }
    fresh_client = httpx.AsyncClient(verify=False, headers={"Connection": "close"})

    async def new_connection() -> None:
        async with fresh_client.stream(
            "POST", tls_url + "/responses", json=body
        ) as response:
            async for _ in response.aiter_bytes():
                pass

    methods: dict[str, Callable[[], Awaitable[Any]]] = {
        name: c.round_trip for name, c in clients.items()
    }
    methods["SSE keep-alive | TLS"] = lambda: sse_session.complete(request)
    methods["SSE new connection per request | TLS"] = new_connection
    for fn in methods.values():  # warm-up
        for _ in range(3):
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, used = await _timed_cpu(methods[name])
            samples[name].append(wall)
            cpu[name].append(used)

    # Start-up: fresh TLS sessions, started (warmed) or not, timing their first request.
    start_ms: list[float] = []
    first_ms: list[float] = []
    cold_first_ms: list[float] = []
    for _ in range(startups):
        warm = open_session(base.merged({"transport": "ws"}))
        start_ms.append(await _timed(warm.start))
        first_ms.append(await _timed(lambda s=warm: s.complete(request)))
        await warm.close()
        cold = open_session(base.merged({"transport": "ws"}))
        cold_first_ms.append(
            await _timed(lambda s=cold: s.complete(request))
        )  # no start(): pays the handshake
        await cold.close()
    connections = clients["spark-ls | TLS, deflate off"].session.stats[
        "connections_opened"
    ]
    for client in clients.values():
        await client.close()
    await sse_session.close()
    await fresh_client.aclose()
    return {
        "samples": samples,
        "cpu": cpu,
        "ws_start_ms": statistics.median(start_ms),
        "ws_first_ms": statistics.median(first_ms),
        "ws_cold_first_ms": statistics.median(cold_first_ms),
        "startups": startups,
        "ws_connections": connections,
    }


class _ReplayConn:
    """An in-memory stand-in for an open websockets connection: every send() queues the frames the
    real endpoint sent for one tiny reply. Isolates the client's own Python work per request."""

    close_code = None

    class state:  # mirrors websockets' attribute
        name = "OPEN"

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self.queue: list[str] = []

    async def send(self, _data: str) -> None:
        self.queue = list(self.frames)

    async def recv(self) -> str:
        return self.queue.pop(0)


async def _in_memory(plain_url: str, n: int) -> dict[str, float]:
    """Per-request CPU µs of the bare loop and of spark-ls's session + transport on recorded frames."""
    from websockets.asyncio.client import connect

    from spark_ls.config import Settings
    from spark_ls.model import ModelRequest, open_session
    from spark_ls.model.ws import _Socket

    bare = _Bare(plain_url, False)
    frames: list[str] = []
    async with connect(bare.url, compression=None) as conn:
        await conn.send(bare.frame)
        while True:
            frame = await conn.recv()
            frames.append(str(frame))
            if json.loads(frame)["type"] in TERMINAL:
                break
    session = open_session(Settings(base_url=plain_url, transport="ws", pool_size=1))
    session._transport._slots[0].socket = _Socket(_ReplayConn(frames))  # type: ignore[attr-defined]
    request = ModelRequest("reply ok", "tiny task")
    replay = _ReplayConn(frames)

    async def bare_once() -> None:
        await replay.send(bare.frame)
        while json.loads(await replay.recv())["type"] not in TERMINAL:
            pass

    out: dict[str, list[float]] = {"bare": [], "spark-ls": []}
    for _ in range(3):  # alternate blocks
        for name, once in (
            ("bare", bare_once),
            ("spark-ls", lambda: session.complete(request)),
        ):
            started = time.process_time()
            for _ in range(n):
                await once()
            out[name].append((time.process_time() - started) / n * 1e6)
    session._transport._slots[0].socket = None  # type: ignore[attr-defined]
    await session.close()
    return {name: min(values) for name, values in out.items()} | {
        "frames": float(len(frames))
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(quick: bool, tiny: bool = False) -> dict:
    rounds, startups = (5, 1) if tiny else (60, 5) if quick else (400, 15)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = _self_signed(Path(tmp))
        where = (
            _EndpointThread
            if os.environ.get("BENCH_ENDPOINT") == "thread"
            else _EndpointProcess
        )
        plain = where(None, None)
        try:
            secure = where(cert, key)
            try:
                spark_log = logging.getLogger("spark_ls")
                level = spark_log.level
                spark_log.setLevel(logging.ERROR)  # the verification-off warning, once per session
                try:
                    result = asyncio.run(
                        _measure(rounds, startups, plain.base_url, secure.base_url)
                    )
                    memory = asyncio.run(_in_memory(plain.base_url, 200 if tiny else 5000))
                finally:
                    spark_log.setLevel(level)  # in-process callers (the smoke test) keep their logging
            finally:
                secure.close()
        finally:
            plain.close()
    samples = result["samples"]
    med = {name: statistics.median(values) for name, values in samples.items()}
    cpu = {name: statistics.median(values) for name, values in result["cpu"].items()}
    rows: list[dict[str, Any]] = []
    targets: list[tuple[str, bool, str]] = []
    for name in samples:
        client, _, config = name.partition(" | ")
        row: dict[str, Any] = {
            "client": client,
            "link": config,
            "median ms": med[name],
            "p90 ms": _quantile(samples[name], 0.9),
            "client CPU ms": cpu[name],
            "requests": len(samples[name]),
        }
        if client == "spark-ls":
            bare = f"bare | {config}"
            ratio = med[name] / med[bare]
            row["vs bare"] = ratio
            row["CPU vs bare"] = cpu[name] / cpu[bare]
            row["target"] = f"<= {TARGET_RATIO}x bare"
            row["result"] = "pass" if ratio <= TARGET_RATIO else "FAIL"
            targets.append(
                (
                    f"spark-ls WebSocket round trip within {TARGET_RATIO}x of a bare websockets client ({config}; median)",
                    ratio <= TARGET_RATIO,
                    f"{ratio:.2f}x ({med[name]:.3f} vs {med[bare]:.3f} ms; client CPU {cpu[name] / cpu[bare]:.2f}x)",
                )
            )
        elif client.startswith("SSE"):
            row["vs bare"] = med[name] / med["bare | TLS, deflate off"]
        rows.append(row)
    ws = med["spark-ls | TLS, deflate off"]
    ws_on = med["spark-ls | TLS, deflate on"]
    below_new = 1 - ws / med["SSE new connection per request | TLS"]
    below_keepalive = 1 - ws / med["SSE keep-alive | TLS"]
    n = result["startups"]
    rows.append(
        {
            "client": "spark-ls",
            "link": "TLS: start() = connect + TLS + upgrade + warm-up",
            "median ms": result["ws_start_ms"],
            "requests": n,
        }
    )
    rows.append(
        {
            "client": "spark-ls",
            "link": "TLS: first request after start() (pre-warmed)",
            "median ms": result["ws_first_ms"],
            "requests": n,
        }
    )
    rows.append(
        {
            "client": "spark-ls",
            "link": "TLS: first request without start() (cold)",
            "median ms": result["ws_cold_first_ms"],
            "requests": n,
        }
    )
    rows.append(
        {
            "client": "bare",
            "link": f"in-memory socket replaying the endpoint's {memory['frames']:.0f} frames",
            "client CPU ms": memory["bare"] / 1000.0,
        }
    )
    rows.append(
        {
            "client": "spark-ls",
            "link": f"in-memory socket replaying the endpoint's {memory['frames']:.0f} frames",
            "client CPU ms": memory["spark-ls"] / 1000.0,
            "CPU vs bare": memory["spark-ls"] / memory["bare"],
        }
    )
    comp_default_ok = ws <= ws_on
    targets += [
        (
            "permessage-deflate default (off) is the faster setting here (TLS, tiny reply)",
            comp_default_ok,
            f"off {ws:.3f} ms vs on {ws_on:.3f} ms",
        ),
        (
            "WebSocket round trip >= 30% below HTTPS keep-alive SSE",
            below_keepalive >= 0.30,
            f"{below_keepalive:.0%} below",
        ),
        (
            "WebSocket round trip >= 80% below a new HTTPS connection per request",
            below_new >= 0.80,
            f"{below_new:.0%} below",
        ),
        (
            "first action after start-up pays no handshake (pre-warmed first request below half the cold one)",
            result["ws_first_ms"] <= result["ws_cold_first_ms"] / 2,
            f"{result['ws_first_ms']:.2f} vs {result['ws_cold_first_ms']:.2f} ms",
        ),
    ]
    return {
        "rows": rows,
        "targets": targets,
        "notes": [
            (
                "bare = websockets' own asyncio client sending one response.create frame and json-decoding every event "
                "until response.completed; spark-ls = ModelSession.complete() (pool gate, timeout, event reader, stats) "
                "on its persistent socket; same endpoint process, methods interleaved in rotating order. 'client CPU ms' is "
                "this process's CPU time per round trip (the endpoint is another process), the figure least moved by other "
                "load on the machine; the wall-clock median includes the endpoint's work and the kernel's wake-ups."
            ),
            (
                f"spark-ls's own Python work per request (session gate, timeout, body, event reader, reply; no I/O): "
                f"{memory['spark-ls']:.0f} µs against {memory['bare']:.0f} µs for the bare loop's json decoding "
                f"(+{memory['spark-ls'] - memory['bare']:.0f} µs), best of 3 blocks."
            ),
            f"permessage-deflate on costs spark-ls {ws_on - ws:+.3f} ms per tiny round trip over TLS (setting ws_compression; default off).",
            f"The spark-ls session opened {result['ws_connections']} connection(s) for {len(samples['spark-ls | TLS, deflate off']) + 3} requests.",
            (
                "Loopback with a self-signed certificate (verification off on every path): real network RTTs add to every "
                "row and to the handshake, so the gaps to SSE grow with distance to the endpoint. The machine's 1-minute "
                f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
            ),
        ],
    }


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "--serve":
    _serve(*(sys.argv[2:4] if len(sys.argv) >= 4 else (None, None)))
