"""Inline completions: latency, cancellation, acceptance, embedded-model speed.

1. **Keystroke -> visible suggestion**, over stdio (`python -m spark_ls serve`, raw JSON-RPC
   client), on a generated ~5,000-line Python file, against the loopback fake endpoint
   (tests/model_endpoint.py, Responses over WebSocket) with a fixed time to first token (TTFT).
   Each sample: a one-character didChange at the cursor (alternately inserting and deleting a
   character the suggestion does not start with, so every request needs the model), then
   ``textDocument/inlineCompletion``; timed from writing the didChange to reading the response.
   Overhead = p50 - TTFT. Also: a typed-through keystroke (the suggestion's first character),
   served from the cache with no model request.
2. **Typing burst**: 20 keystrokes 30 ms apart, each followed by an inlineCompletion request
   (not awaited, as an editor without debounce would), TTFT 300 ms. Counted at the endpoint:
   requests started, and requests that ran to completion (the rest were cancelled).
3. **Acceptance on a replay of real edits** with the embedded model (Qwen2.5-Coder-1.5B, FIM):
   bench/inline_replay.py replays code lines added by this repository's own git history (real
   git, offline; main's history before the inline code existed, so the model is not graded on
   the feature's own source) keystroke by keystroke in the state they were typed in, asking for
   a suggestion at each pause (word boundary) unless one on screen is being typed through.
   Reported: requests whose suggestion was exactly the rest of the line, a right prefix of it,
   wrong or empty; and the share of the replayed characters that accepted suggestions typed.
4. **Embedded model speed** for a one-line FIM completion: latency cold (first request after
   load) and warm (the same prompt again: llama.cpp reuses the KV cache), generation tokens/s.

3 and 4 run the real model (CPU-heavy): run the benchmark under ``flock /tmp/heavy.lock``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TITLE = "Inline completions: keystroke -> suggestion, typing burst, acceptance (embedded model), model speed"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench.bench_lsp import make_source
from bench.inline_replay import ReplayResult, replay, replay_lines
from bench.lsp_client import RawLspClient, client_capabilities

API_KEY = "sk-bench-not-a-real-key"
TTFT = 0.1
BURST_TTFT = 0.3
SUGGESTION = "len(orders)"
# main's history before the inline library existed (see the module docstring, 3.)
REPLAY_REV = "7f92751^"
REPLAY_LINES = {True: 8, False: 16}  # keyed by quick
REPLAY_REQUESTS = {True: 16, False: 40}


def _pcts(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[-1]


def _source(blocks: int = 74) -> tuple[str, int, int]:
    """(text, cursor line, cursor character): ``    count = |`` inside a function mid-file
    (74 blocks: 5,119 lines; 2 blocks: 151 lines)."""
    text, target, _ = make_source(blocks)
    lines = text.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(f"def summarize_{target}("))
    lines.insert(at + 1, "    count = \n")
    return "".join(lines), at + 1, len("    count = ")


def _cpu_ms(pid: int) -> float | None:
    """CPU time a process has used so far (all its threads; Linux schedstat, ns resolution)."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e6


class _Bare:
    """A bare ``websockets`` client on the same endpoint: the model's own round trip as any
    client sees it (it re-sends the exact request body spark-ls sent)."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.replace("http://", "ws://", 1).rstrip("/") + "/responses"
        self.conn: Any = None

    async def start(self) -> None:
        from websockets.asyncio.client import connect

        self.conn = await connect(self.url, compression=None, additional_headers={"Authorization": f"Bearer {API_KEY}"})

    async def round_trip(self, body: dict[str, Any]) -> float:
        frame = json.dumps({"type": "response.create", **body})
        started = time.perf_counter()
        await self.conn.send(frame)
        while json.loads(await self.conn.recv())["type"] not in ("response.completed", "response.failed", "error"):
            pass
        return (time.perf_counter() - started) * 1000

    async def close(self) -> None:
        await self.conn.close()


def _caps() -> dict[str, Any]:
    caps = client_capabilities()
    caps["textDocument"]["inlineCompletion"] = {"dynamicRegistration": False}
    return caps


async def _server(endpoint: Any, root: Path, options: dict[str, Any] | None = None) -> RawLspClient:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SPARK_LS_"))}
    env.update(OPENAI_BASE_URL=endpoint.base_url, OPENAI_API_KEY=API_KEY)
    client = await RawLspClient([sys.executable, "-m", "spark_ls", "serve"], env=env, cwd=str(root)).start()
    await client.request("initialize", {
        "processId": os.getpid(), "rootUri": root.as_uri(), "capabilities": _caps(),
        "workspaceFolders": [{"uri": root.as_uri(), "name": root.name}], "initializationOptions": options,
    })
    client.notify("initialized", {})
    await client.wait_notification("spark/status", timeout=60)
    return client


class _Doc:
    def __init__(self, client: RawLspClient, uri: str, text: str, line: int, col: int) -> None:
        self.client, self.uri, self.line, self.col = client, uri, line, col
        self.version = 1
        client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})

    def insert(self, text: str) -> None:
        self.version += 1
        pos = {"line": self.line, "character": self.col}
        self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": pos, "end": pos}, "text": text}],
        })
        self.col += len(text)

    def delete_one(self) -> None:
        self.version += 1
        self.client.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": {"line": self.line, "character": self.col - 1},
                                          "end": {"line": self.line, "character": self.col}}, "text": ""}],
        })
        self.col -= 1

    def request(self) -> tuple[int, asyncio.Future[Any]]:
        return self.client.send_request("textDocument/inlineCompletion", {
            "textDocument": {"uri": self.uri}, "position": {"line": self.line, "character": self.col},
            "context": {"triggerKind": 2},
        })


def _items(result: Any) -> list[dict[str, Any]]:
    if not result:
        return []
    return list(result.get("items", [])) if isinstance(result, dict) else list(result)


async def _latency(quick: bool, tiny: bool = False) -> dict[str, Any]:
    """In one run, one server: keystroke -> suggestion on the 5,119-line file and on a 151-line
    one (interleaved), then the bare client's round trip with the same request body."""
    from model_endpoint import ModelEndpoint

    samples = 4 if tiny else 15 if quick else 60
    big, small = _source(), _source(2)
    out: dict[str, Any] = {"lines": big[0].count("\n"), "small_lines": small[0].count("\n")}
    with tempfile.TemporaryDirectory() as tmp, ModelEndpoint(api_key=API_KEY, first_token_delay=TTFT, reply_for=lambda b: SUGGESTION) as ep:
        root = Path(tmp)
        client = await _server(ep, root)
        bare = _Bare(ep.base_url)
        await bare.start()
        try:
            doc = _Doc(client, (root / "orders.py").as_uri(), *big)
            small_doc = _Doc(client, (root / "small.py").as_uri(), *small)
            model_ms: list[float] = []
            small_ms: list[float] = []
            bare_ms: list[float] = []
            shown: list[bool] = []

            pid = client.proc.pid if client.proc is not None else 0
            cpu: dict[str, list[float]] = {"big": [], "small": []}

            async def sample(d: _Doc, i: int) -> tuple[float, Any]:
                cpu_before = _cpu_ms(pid)
                started = time.perf_counter()
                if i % 2 == 0:
                    d.insert("z")
                else:
                    d.delete_one()
                _, fut = d.request()
                result = await fut
                ms = (time.perf_counter() - started) * 1000
                cpu_after = _cpu_ms(pid)
                if i >= 3 and cpu_before is not None and cpu_after is not None:
                    cpu["big" if d is doc else "small"].append(cpu_after - cpu_before)
                return ms, result

            # Each document gets a keystroke every ~2 x 105 ms: typing, not pausing (no pause work
            # such as the diagnostics debounce runs in between, as while typing).
            for i in range(samples + 3):
                ms, result = await sample(doc, i)
                small_ms_i, _ = await sample(small_doc, i)
                if i >= 3:  # warm-up
                    model_ms.append(ms)
                    shown.append(bool(_items(result)))
                    small_ms.append(small_ms_i)
            body = next(c.body for c in reversed(ep.calls) if c.body.get("generate") is not False)
            for i in range(samples + 3):
                bare_i = await bare.round_trip(body)
                if i >= 3:
                    bare_ms.append(bare_i)
            # Typed-through: the suggestion's first character, then the request.
            col = big[2]
            hit_ms: list[float] = []
            for i in range(samples):
                if doc.col != col:
                    doc.delete_one()
                _, fut = doc.request()
                await fut  # a fresh suggestion at the original cursor (a model call)
                calls = len([c for c in ep.calls if c.body.get("generate") is not False])
                started = time.perf_counter()
                doc.insert(SUGGESTION[0])
                _, fut = doc.request()
                result = await fut
                hit_ms.append((time.perf_counter() - started) * 1000)
                after = len([c for c in ep.calls if c.body.get("generate") is not False])
                assert after == calls and _items(result), "typed-through keystroke was not a cache hit"
            out.update(model_ms=model_ms, small_ms=small_ms, bare_ms=bare_ms, hit_ms=hit_ms, shown=sum(shown), n=len(shown),
                       cpu_big=cpu["big"], cpu_small=cpu["small"])
        finally:
            await bare.close()
            await client.stop()
    return out


async def _burst() -> dict[str, Any]:
    from model_endpoint import ModelEndpoint

    text, line, col = _source()
    with tempfile.TemporaryDirectory() as tmp, ModelEndpoint(api_key=API_KEY, first_token_delay=BURST_TTFT, reply_for=lambda b: SUGGESTION) as ep:
        root = Path(tmp)
        client = await _server(ep, root)
        try:
            doc = _Doc(client, (root / "orders.py").as_uri(), text, line, col)
            before = len(ep.calls)
            futures = []
            for _ in range(20):
                doc.insert("q")
                futures.append(doc.request()[1])
                await asyncio.sleep(0.03)
            last_sent = time.perf_counter()
            results = await asyncio.wait_for(asyncio.gather(*futures), 30)
            last_ms = (time.perf_counter() - last_sent) * 1000
            await asyncio.sleep(0.5)
            calls = [c for c in ep.calls[before:] if c.body.get("generate") is not False]
            return {
                "started": len(calls),
                "completed": sum(c.outcome == "completed" for c in calls),
                "answered": sum(bool(_items(r)) for r in results),
                "last_ms": last_ms,
            }
        finally:
            await client.stop()


# ------------------------------------------------------------------------- embedded model


async def _embedded(quick: bool) -> dict[str, Any]:
    from spark_ls.config import Settings
    from spark_ls.context.document import snapshot_of
    from spark_ls.context.languages import language_for
    from spark_ls.inline.context import build_context
    from spark_ls.inline.generate import generate
    from spark_ls.model.session import open_session
    from spark_ls.server.inline_completion import INLINE_BUDGET_TOKENS_LOCAL

    py = language_for(language_id="python")
    session = open_session(Settings(transport="local"))
    out: dict[str, Any] = {}
    try:
        began = time.perf_counter()
        await session.start()
        out["load_s"] = time.perf_counter() - began
        # 4. One-line completion: cold, then warm (same prompt).
        fib = "def fib(n):\n    if n < 2:\n        return n\n    return \n\n\nprint(fib(10))\n"
        snap = snapshot_of(fib, py)
        ctx = build_context(snap, fib.index("return \n") + len("return "), path="fib.py")
        speed = []
        for _ in range(2):
            began = time.perf_counter()
            gen = await generate(session, ctx)
            ms = (time.perf_counter() - began) * 1000
            suggestion = gen.suggestion()
            speed.append((ms, suggestion.new_text if suggestion else None))
        local = session._transport._model
        metrics = await local.runtime_metrics()
        out["speed"] = speed
        out["tokens_per_s"] = metrics.get("predicted_tokens_seconds")
        out["prompt_tokens_per_s"] = metrics.get("prompt_tokens_seconds")
        # 3. Replay.
        lines = replay_lines(ROOT, REPLAY_REV, paths=["spark_ls"], commits=80, limit=REPLAY_LINES[quick], per_file=2)
        out["replay"] = await replay(session, lines, language=py, budget=INLINE_BUDGET_TOKENS_LOCAL,
                                     max_requests=REPLAY_REQUESTS[quick])
    finally:
        await session.close()
    return out


def run(quick: bool, tiny: bool = False) -> dict[str, Any]:
    lat = asyncio.run(_latency(quick, tiny))
    burst = asyncio.run(_burst())
    p50, p95 = _pcts(lat["model_ms"])
    h50, h95 = _pcts(lat["hit_ms"])
    s50, s95 = _pcts(lat["small_ms"])
    b50, b95 = _pcts(lat["bare_ms"])
    rows: list[dict[str, Any]] = [
        {"measure": f"keystroke -> inlineCompletion, model TTFT {TTFT * 1000:.0f} ms ({lat['lines']:,}-line file)",
         "n": lat["n"], "p50 ms": p50, "p95 ms": p95, "overhead p50 ms": p50 - TTFT * 1000,
         "note": f"{lat['shown']}/{lat['n']} with a suggestion; over the bare round trip (same run): {p50 - b50:.1f} ms"},
        {"measure": f"same, {lat['small_lines']:,}-line file (interleaved, same server)", "n": len(lat["small_ms"]),
         "p50 ms": s50, "p95 ms": s95, "overhead p50 ms": s50 - TTFT * 1000,
         "note": f"the {lat['lines']:,}-line file costs {p50 - s50:+.1f} ms"},
        {"measure": "spark-ls server CPU per keystroke + inlineCompletion (all threads; load-independent)",
         "n": len(lat["cpu_big"]), "p50 ms": _pcts(lat["cpu_big"])[0] if lat["cpu_big"] else "n/a",
         "p95 ms": _pcts(lat["cpu_big"])[1] if lat["cpu_big"] else "", "overhead p50 ms": "",
         "note": (f"{lat['lines']:,}-line file; {lat['small_lines']:,}-line file: {_pcts(lat['cpu_small'])[0]:.2f} ms"
                  if lat["cpu_small"] else "no /proc schedstat here")},
        {"measure": "bare websockets client, the same request body, same endpoint (same run)", "n": len(lat["bare_ms"]),
         "p50 ms": b50, "p95 ms": b95, "overhead p50 ms": b50 - TTFT * 1000,
         "note": "the model's own round trip as any client sees it (endpoint + loopback)"},
        {"measure": "typed-through keystroke (cache hit, no model request)", "n": len(lat["hit_ms"]),
         "p50 ms": h50, "p95 ms": h95, "overhead p50 ms": "", "note": ""},
        {"measure": f"burst: 20 keystrokes at 30 ms, TTFT {BURST_TTFT * 1000:.0f} ms", "n": 20,
         "p50 ms": burst["last_ms"], "p95 ms": "", "overhead p50 ms": "",
         "note": f"model requests started {burst['started']}, completed {burst['completed']}, answered {burst['answered']} (last keystroke -> its answer in p50 column)"},
    ]
    targets = [
        (f"keystroke -> suggestion p50 <= TTFT + 10 ms on a {lat['lines']:,}-line file", p50 - TTFT * 1000 <= 10.0),
        ("typing burst (20 keystrokes at 30 ms): at most 1 model request completes", burst["completed"] <= 1),
    ]
    notes = [
        "fake endpoint: tests/model_endpoint.py (Responses over WebSocket, loopback); timings on a shared 2-core machine are noisy",
    ]
    if tiny:  # the smoke configuration (tests/test_bench_smoke.py): no embedded-model part
        try:
            found = len(replay_lines(ROOT, REPLAY_REV, paths=["spark_ls"], commits=80, limit=REPLAY_LINES[True], per_file=2))
            where = f"{found} replay lines found in this repo's history"
        except Exception as exc:  # noqa: BLE001 - a shallow clone has no history to replay
            where = f"no replay lines ({type(exc).__name__}: {exc})"
        notes.append(f"--tiny: the embedded-model part is not run (it loads the model and takes minutes); {where}")
        return {"rows": rows, "targets": targets, "notes": notes}
    try:
        emb = asyncio.run(_embedded(quick))
    except Exception as exc:  # noqa: BLE001 - report, do not hide the other figures
        notes.append(f"embedded model part failed: {type(exc).__name__}: {exc}")
        return {"rows": rows, "targets": targets, "notes": notes}
    (cold_ms, cold_text), (warm_ms, _warm_text) = emb["speed"]
    rows.append({"measure": "embedded model, one-line FIM completion, cold (first request)", "n": 1, "p50 ms": cold_ms,
                 "p95 ms": "", "overhead p50 ms": "", "note": f"suggestion {cold_text!r}"})
    rows.append({"measure": "embedded model, same completion again (KV cache reused)", "n": 1, "p50 ms": warm_ms,
                 "p95 ms": "", "overhead p50 ms": "", "note": f"generation {emb['tokens_per_s'] or float('nan'):.1f} tok/s, prompt {emb['prompt_tokens_per_s'] or float('nan'):.1f} tok/s (llama.cpp counters)"})
    rep: ReplayResult = emb["replay"]
    if rep.requests:
        n = len(rep.requests)
        exact, prefix, first, wrong, empty = (rep.count(v) for v in ("exact", "prefix", "first line", "wrong", "empty"))
        r50, r95 = _pcts([r.ms for r in rep.requests])
        files = len({r.path for r in rep.requests})
        rows.append({"measure": f"acceptance, replay of {rep.lines} lines added by this repo's git history ({files} files), embedded model, FIM",
                     "n": n, "p50 ms": r50, "p95 ms": r95, "overhead p50 ms": "",
                     "note": (f"of {n} requests: exact rest of line {exact} ({exact / n:.0%}), right prefix {prefix}, "
                              f"first line only {first}, wrong {wrong}, empty {empty}; accepted {exact + prefix}/{n} ({(exact + prefix) / n:.0%}); "
                              f"characters typed by accepted suggestions {rep.saved}/{rep.chars} ({rep.saved / max(1, rep.chars):.0%}); "
                              f"{rep.typed_through} keystrokes typed through a shown suggestion")})
        for r in rep.requests:
            notes.append(f"replay {r.path}: typed `{r.typed}` next `{r.expected.strip()}` got `{r.got.strip()[:80]}` ({r.verdict}, {r.ms:.0f} ms)")
    notes.append(f"embedded model load {emb['load_s']:.1f} s (Qwen2.5-Coder-1.5B Q4_K_M, 2 threads)")
    return {"rows": rows, "targets": targets, "notes": notes}
