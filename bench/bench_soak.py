"""Soak: many resolves through one `spark-ls serve` process; does its memory grow?

One real server subprocess (stdio, pytest-lsp client), a pool of 4 WebSocket sessions to the fake
model endpoint (no added latency: this measures spark-ls, not the model), 20 open documents.
Resolves run in concurrent batches of 40; between batches every document is edited (a comment
line inserted or removed, so versions, trees and snapshots keep changing) and the actions are
listed again; one reply in 50 is a diff that does not apply (the refusal path: error response and
showMessage). The server's resident set size (VmRSS from /proc) is sampled after a warm-up of
400 resolves and then at every tenth of the run.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

TITLE = "Soak: 10,000 resolves through one server (pool 4, 20 documents, edits between batches): RSS growth"
REPO_ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = 20
BATCH = 40
WARMUP = 400
REFUSE_EVERY = 50


def _source(n: int, comment: bool) -> str:
    head = f'"""Soak document {n}{" 😀" if n % 2 else ""}."""\n'
    extra = "# edited\n" if comment else ""
    return f"{head}{extra}\n\ndef f_{n:02d}(x):\n    y = x * 2\n    return y - {n}\n"


class _Model:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, body: dict[str, Any]) -> str:
        self.count += 1
        # The instructions name the file and are sent even when a request is chained to an
        # earlier one (whose input then omits the file).
        n = int(re.search(r"doc(\d\d)\.py", str(body.get("instructions") or "")).group(1))
        removed = "    return y - 999\n" if self.count % REFUSE_EVERY == 0 else f"    return y - {n}\n"
        return f"--- a/doc{n:02d}.py\n+++ b/doc{n:02d}.py\n@@ -1,2 +1,2 @@\n     y = x * 2\n-{removed}+    return y + {n}\n"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _soak(total: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from conftest import TEST_API_KEY
    from lsp_helpers import lsp_client, open_document, server_env, wait_ready
    from lsprotocol import types
    from model_endpoint import ModelEndpoint

    model = _Model()
    endpoint = ModelEndpoint(api_key=TEST_API_KEY, reply_for=model, chunk_chars=16).start()
    tmp = Path("/tmp/spark-ls-soak")
    tmp.mkdir(exist_ok=True)
    samples: list[tuple[int, int]] = []
    latencies: list[float] = []
    failures = refusals = 0
    try:
        env = server_env(endpoint, SPARK_LS_LOG="CRITICAL")  # the refusals would fill stderr with tracebacks
        async with lsp_client(endpoint, root=tmp, env=env, init_options={"poolSize": 4, "prefetch": False}) as client:
            await wait_ready(client)
            pid = client._server.pid  # the server subprocess
            uris = [(tmp / f"doc{n:02d}.py").as_uri() for n in range(DOCUMENTS)]
            versions = [1] * DOCUMENTS
            commented = [False] * DOCUMENTS
            for n, uri in enumerate(uris):
                open_document(client, uri, _source(n, False))

            async def list_all() -> list[Any]:
                found = []
                for n, uri in enumerate(uris):
                    line = 5 if commented[n] else 4
                    cursor = types.Position(line=line, character=4)
                    listed = await client.text_document_code_action_async(
                        types.CodeActionParams(
                            text_document=types.TextDocumentIdentifier(uri=uri),
                            range=types.Range(start=cursor, end=cursor),
                            context=types.CodeActionContext(diagnostics=[]),
                        )
                    )
                    found.append(next(a for a in listed if a.title == f"Fix bug in f_{n:02d}"))
                return found

            async def timed(action: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await client.code_action_resolve_async(action)
                finally:
                    latencies.append(time.perf_counter() - started)

            done = 0
            next_sample = WARMUP
            started = time.perf_counter()
            while done < total:
                actions = await list_all()
                batch = [actions[i % DOCUMENTS] for i in range(min(BATCH, total - done))]
                results = await asyncio.gather(*(timed(a) for a in batch), return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        if "refused" in str(result):
                            refusals += 1
                        else:
                            failures += 1
                    elif result.edit is None:
                        failures += 1
                done += len(batch)
                for n, uri in enumerate(uris):  # edit every document
                    versions[n] += 1
                    if commented[n]:
                        change = types.TextDocumentContentChangePartial(
                            range=types.Range(start=types.Position(line=1, character=0), end=types.Position(line=2, character=0)), text=""
                        )
                    else:
                        change = types.TextDocumentContentChangePartial(
                            range=types.Range(start=types.Position(line=1, character=0), end=types.Position(line=1, character=0)), text="# edited\n"
                        )
                    commented[n] = not commented[n]
                    client.text_document_did_change(
                        types.DidChangeTextDocumentParams(
                            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=versions[n]),
                            content_changes=[change],
                        )
                    )
                client.messages.clear()  # the client's own memory is not what we measure
                if done >= next_sample or done >= total:
                    samples.append((done, _rss_kib(pid)))
                    next_sample = done + max(BATCH, (total - WARMUP) // 10) if done >= WARMUP else WARMUP
            wall = time.perf_counter() - started
    finally:
        endpoint.stop()
    return {
        "samples": samples, "latencies": latencies, "failures": failures, "refusals": refusals,
        "wall": wall, "calls": len(endpoint.calls), "connections": endpoint.connections_opened,
    }


def run(quick: bool, tiny: bool = False) -> dict:
    total = WARMUP + 2 * BATCH if tiny else 1_000 if quick else 10_000
    result = asyncio.run(_soak(total))
    samples = result["samples"]
    start_kib = samples[0][1]
    end_kib = samples[-1][1]
    peak_kib = max(k for _, k in samples)
    growth_mib = (end_kib - start_kib) / 1024
    per_1000 = growth_mib / max(1, (samples[-1][0] - samples[0][0])) * 1000
    lat = sorted(result["latencies"])
    rows = [{"after resolves": n, "server RSS (MiB)": round(k / 1024, 1)} for n, k in samples]
    rows.append({
        "after resolves": f"start {samples[0][0]} -> end {samples[-1][0]}",
        "server RSS (MiB)": f"{start_kib / 1024:.1f} -> {end_kib / 1024:.1f} (growth {growth_mib:+.1f}, peak {peak_kib / 1024:.1f})",
    })
    expected_refusals = result["calls"] // REFUSE_EVERY
    notes = [
        (
            f"{total} resolves in {result['wall']:.1f} s ({total / result['wall']:.0f}/s); batches of {BATCH}, "
            f"pool 4, {DOCUMENTS} documents edited after every batch"
        ),
        (
            f"resolve latency p50 {statistics.median(lat) * 1000:.1f} ms, p95 {lat[int(len(lat) * 0.95)] * 1000:.1f} ms "
            f"(client-measured, batch of {BATCH} in flight, zero model latency)"
        ),
        f"RSS growth after the {WARMUP}-resolve warm-up: {growth_mib:+.2f} MiB ({per_1000:+.3f} MiB per 1000 resolves)",
        (
            f"refused (scripted, one reply in {REFUSE_EVERY}): {result['refusals']}; "
            f"unexpected failures: {result['failures']}; model connections opened: {result['connections']}"
        ),
        "command: python -m bench soak" + (" --tiny" if tiny else " --quick" if quick else ""),
    ]
    return {
        "rows": rows,
        "notes": notes,
        "targets": [
            # A leak of one small object per notification (the pygls futures this bench found)
            # showed as ~1 MiB per 1000 resolves; a healthy server stays well under half that.
            ("RSS growth after warm-up under 0.5 MiB per 1000 resolves", per_1000 < 0.5),
            ("no resolve lost or failed unexpectedly (only the scripted refusals)", result["failures"] == 0 and result["refusals"] == expected_refusals),
        ],
    }
