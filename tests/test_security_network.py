"""Network exposure: TLS verification is on by default; servers bind to loopback only.

TLS: a TLS-terminating proxy with a self-signed certificate sits in front of the fake endpoint.
By default spark-ls refuses it (certificate verification) *before* sending anything — the key
never leaves; trusting the certificate authority makes the same endpoint work (so verification is
real, not a blanket failure); ``tls_verify = false`` (``--insecure``) connects and logs a warning.

Binding: ``serve --tcp/--ws`` and ``model-server`` refuse non-loopback addresses unless
``--allow-remote`` is given.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint

from spark_ls.cli import _host_port, build_parser
from spark_ls.config import Secret, Settings, load_settings
from spark_ls.model.session import open_session
from spark_ls.model.types import ModelError, ModelRequest
from spark_ls.netloc import is_loopback_host as is_loopback

REQUEST = ModelRequest(instructions="Reply with nothing.", input="ping")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (its own CA)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True, capture_output=True,
    )
    return cert, key


async def _tls_proxy(certificate: tuple[Path, Path], target_port: int) -> tuple[asyncio.AbstractServer, int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def tls_endpoint(model_endpoint: ModelEndpoint, certificate: tuple[Path, Path]) -> AsyncIterator[tuple[ModelEndpoint, str]]:
    server, port = await _tls_proxy(certificate, model_endpoint.port)
    try:
        yield model_endpoint, f"https://localhost:{port}/v1"
    finally:
        server.close()


def _settings(base_url: str, transport: str, **extra: object) -> Settings:
    return Settings(
        base_url=base_url, api_key=Secret(TEST_API_KEY), transport=transport, connect_timeout=5,
        request_timeout=10, max_retries=0, **extra,
    )


@pytest.mark.parametrize("transport", ["ws", "responses", "chat"])
async def test_untrusted_certificate_is_refused_before_the_key_is_sent(tls_endpoint, transport: str) -> None:
    endpoint, url = tls_endpoint
    assert Settings().tls_verify is True and load_settings(None, {}, environ={}).tls_verify is True
    session = open_session(_settings(url, transport))
    try:
        await session.start()
        with pytest.raises(ModelError) as failure:
            await session.complete(REQUEST)
    finally:
        await session.close()
    assert failure.value.kind == "network"
    assert "certificate" in failure.value.message.lower() or "ssl" in failure.value.message.lower(), failure.value.message
    assert endpoint.headers_seen == [] and endpoint.requests == []


@pytest.mark.parametrize("transport", ["ws", "responses", "chat"])
async def test_trusted_certificate_works_with_verification_on(
    tls_endpoint, certificate: tuple[Path, Path], transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, url = tls_endpoint
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    endpoint.replies.append("")
    session = open_session(_settings(url, transport))
    try:
        await session.start()
        reply = await session.complete(REQUEST)
    finally:
        await session.close()
    assert reply.text == ""
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize("transport", ["ws", "responses", "chat"])
async def test_verification_off_needs_the_option_and_logs_a_warning(
    tls_endpoint, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, url = tls_endpoint
    endpoint.replies.append("")
    caplog.set_level(logging.WARNING)
    session = open_session(_settings(url, transport, tls_verify=False))
    try:
        await session.start()
        await session.complete(REQUEST)
    finally:
        await session.close()
    assert len(endpoint.requests) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("TLS certificate verification is OFF" in w for w in warnings), warnings


def test_insecure_is_an_explicit_cli_option_only() -> None:
    from spark_ls.cli import _session_overrides

    parser = build_parser()
    for command in (["serve"], ["check"], ["models"]):
        assert "tls_verify" not in _session_overrides(parser.parse_args(command))
        assert _session_overrides(parser.parse_args([*command, "--insecure"]))["tls_verify"] is False


# ---------------------------------------------------------------------- binding


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("localhost", True),
        ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("10.0.0.1", False),
        ("example.com", False), ("127.1", False), ("0", False), ("::ffff:10.0.0.1", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_default_host_is_loopback() -> None:
    assert _host_port(":7000") == ("127.0.0.1", 7000)
    assert _host_port("[::1]:7000") == ("::1", 7000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spark_ls", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--tcp", "0.0.0.0:{port}"],
        ["serve", "--ws", "0.0.0.0:{port}"],
        ["serve", "--tcp", "[::]:{port}"],
        ["serve", "--ws", "192.0.2.1:{port}"],
        ["model-server", "--listen", "0.0.0.0:{port}"],
    ],
)
def test_non_loopback_bind_is_refused_without_allow_remote(args: list[str]) -> None:
    port = _free_port()
    result = _spark(*[a.format(port=port) for a in args])
    assert result.returncode == 2, result
    assert "refusing to listen" in result.stderr and "--allow-remote" in result.stderr
    with socket.socket() as probe:  # and nothing is listening
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--tcp", "127.0.0.1:{port}"],
        ["serve", "--ws", "localhost:{port}"],
        ["serve", "--tcp", "0.0.0.0:{port}", "--allow-remote"],
    ],
)
def test_loopback_or_allow_remote_binds(args: list[str]) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spark_ls", *[a.format(port=port) for a in args]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        assert _wait_listening(port, proc), proc.stderr.read().decode() if proc.poll() is not None else "not listening"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def test_editor_is_warned_when_verification_is_off(model_endpoint: ModelEndpoint, tmp_path: Path) -> None:
    """Off through the editor's settings: a visible warning, not only a log line; on (the
    default): no such warning. A workspace's pyproject.toml cannot turn it off at all."""
    from lsp_helpers import lsp_client, wait_ready
    from lsprotocol import types

    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "pyproject.toml").write_text("[tool.spark-ls]\ntls_verify = false\n")
    cases = [({"tlsVerify": False}, tmp_path, True), (None, tmp_path / "off", False), (None, tmp_path, False)]
    for options, root, warned in cases:
        async with lsp_client(model_endpoint, root=root, init_options=options) as client:
            await wait_ready(client)
            found = [m for m in client.messages if "TLS certificate verification is OFF" in m.message]
            assert bool(found) is warned, (options, root, [m.message for m in client.messages])
            if found:
                assert found[0].type == types.MessageType.Warning


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        (None, True),  # editors and other non-browser clients send no Origin
        ("http://localhost:3000", True),  # a web editor served from this machine
        ("http://127.0.0.1:8080", True),
        ("http://[::1]:8080", True),
        ("https://evil.example", False),  # any web page the user happens to visit
        ("http://localhost.evil.example", False),
        ("http://127.0.0.1.nip.io", False),
        ("null", False),  # file:// pages, sandboxed frames
    ],
)
async def test_ws_server_refuses_web_pages_from_other_sites(origin: str | None, accepted: bool) -> None:
    """A browser lets any site open ws://127.0.0.1:PORT; spark-ls --ws must refuse such pages,
    or any site could drive it (and spend the user's model key)."""
    import json

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    port = _free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - a plain child process, waited for below
        [sys.executable, "-m", "spark_ls", "serve", "--ws", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert await asyncio.to_thread(_wait_listening, port, proc)
        headers = {"Origin": origin} if origin else {}
        request = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
        if accepted:
            async with connect(f"ws://127.0.0.1:{port}", additional_headers=headers) as ws:
                await ws.send(json.dumps(request))
                assert json.loads(await asyncio.wait_for(ws.recv(), 20))["id"] == 1
        else:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}", additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 403
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_tcp_server_ignores_http_requests_from_web_pages() -> None:
    """A web page can POST text/plain to http://127.0.0.1:PORT without a preflight; the request's
    own Content-Length header would frame its body as an LSP message. spark-ls closes such a
    connection unanswered — and keeps serving the real client."""
    import json

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spark_ls", "serve", "--tcp", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}).encode()
    try:
        assert _wait_listening(port, proc)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as page:
            page.sendall(
                f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: https://evil.example\r\n"
                f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            assert page.recv(1000) == b""  # closed, nothing answered
        assert proc.poll() is None
        with socket.create_connection(("127.0.0.1", port), timeout=20) as editor:
            editor.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            received = b""
            while b'"result"' not in received:
                chunk = editor.recv(65536)
                assert chunk, received
                received += chunk
        assert b'"id": 1' in received or b'"id":1' in received
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
