"""Load: 200 concurrent resolves over a pool of 4 sockets, against an endpoint with random latency.

20 documents, each open at its own version, each with its own function and constant; the fake
model answers every request with the diff for the document it was asked about (chosen from the
request's content), after a random delay, so answers come back out of order. While the resolves
are in flight, every other document is edited (a line inserted above the function: a new
version). Every resolve must complete with the edit for its own document, carrying a version the
document really had, and turning exactly that version's text into its fixed text — none lost,
none swapped — and the session must have used no more than its 4 sockets.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from conftest import TEST_API_KEY
from lsp_helpers import lsp_client, open_document, wait_ready
from lsprotocol import types
from model_endpoint import ModelEndpoint
from reliability_helpers import applied, list_actions, wait_for

DOCUMENTS = 20
PER_DOCUMENT = 10
POOL = 4


def source(n: int) -> str:
    mark = " 😀" if n % 2 else ""
    return f'"""Document {n}{mark}."""\n\n\ndef f_{n:02d}(x):\n    y = x * 2\n    return y - {n}\n'


def fixed(n: int) -> str:
    return source(n).replace(f"return y - {n}", f"return y + {n}")


def document_of(body: dict[str, Any]) -> int:
    """Which document a request is about: from its instructions, which name the file and are
    sent even when the request is chained to an earlier one (and its input omits the file)."""
    match = re.search(r"doc(\d\d)\.py", str(body.get("instructions") or ""))
    assert match is not None, body
    return int(match.group(1))


def reply_for(body: dict[str, Any]) -> str:
    n = document_of(body)
    return (
        f"--- a/doc{n:02d}.py\n+++ b/doc{n:02d}.py\n@@ -5,2 +5,2 @@\n"
        f"     y = x * 2\n-    return y - {n}\n+    return y + {n}\n"
    )


async def test_200_concurrent_resolves_over_4_sockets(tmp_path: Path) -> None:
    endpoint = ModelEndpoint(api_key=TEST_API_KEY, reply_for=reply_for, latency_range=(0.0, 0.03), chunk_chars=5).start()
    try:
        async with lsp_client(endpoint, root=tmp_path, init_options={"poolSize": POOL, "prefetch": False}) as client:
            await wait_ready(client)
            actions: dict[int, Any] = {}
            for n in range(DOCUMENTS):
                uri = (tmp_path / f"doc{n:02d}.py").as_uri()
                open_document(client, uri, source(n), version=1000 + 7 * n)
            for n in range(DOCUMENTS):
                uri = (tmp_path / f"doc{n:02d}.py").as_uri()
                cursor = types.Position(line=4, character=4)
                listed = await list_actions(client, uri, types.Range(start=cursor, end=cursor))
                actions[n] = next(a for a in listed if a.title == f"Fix bug in f_{n:02d}")
            jobs = [(n, k) for k in range(PER_DOCUMENT) for n in range(DOCUMENTS)]
            running = asyncio.gather(*(client.code_action_resolve_async(actions[n]) for n, _ in jobs))
            await wait_for(lambda: len(endpoint.calls) >= DOCUMENTS, "the first requests")
            for n in range(0, DOCUMENTS, 2):
                uri = (tmp_path / f"doc{n:02d}.py").as_uri()
                client.text_document_did_change(
                    types.DidChangeTextDocumentParams(
                        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=1000 + 7 * n + 1),
                        content_changes=[
                            types.TextDocumentContentChangePartial(
                                range=types.Range(start=types.Position(line=1, character=0), end=types.Position(line=1, character=0)),
                                text="# edited while the model works\n",
                            )
                        ],
                    )
                )
            results = await running
            seen_connections = {c.connection_id for c in endpoint.calls}
            versions_seen: set[tuple[int, int]] = set()
            for (n, k), resolved in zip(jobs, results):
                assert resolved.edit is not None, (n, k)
                (change,) = resolved.edit.document_changes
                assert change.text_document.uri.endswith(f"/doc{n:02d}.py"), (n, k, change.text_document.uri)
                version = change.text_document.version
                base = 1000 + 7 * n
                assert version in ((base, base + 1) if n % 2 == 0 else (base,)), (n, k, version)
                before, after = source(n), fixed(n)
                if version == base + 1:
                    before, after = [t.replace("\n\n", "\n# edited while the model works\n\n", 1) for t in (before, after)]
                assert applied(before, change) == after, (n, k, version)
                versions_seen.add((n, version))
            # The concurrent edits really raced the model: some results landed on the new version.
            assert any(v == 1000 + 7 * n + 1 for n, v in versions_seen), versions_seen
            assert len(endpoint.calls) == DOCUMENTS * PER_DOCUMENT
            assert all(c.outcome == "completed" for c in endpoint.calls)
            # Each document's request went out once per resolve, and the pool stayed at 4 sockets.
            counts = {n: 0 for n in range(DOCUMENTS)}
            for call in endpoint.calls:
                counts[document_of(call.body)] += 1
                assert f"def f_{document_of(call.body):02d}(" in call.context_text  # the model saw that file
            assert set(counts.values()) == {PER_DOCUMENT}, counts
            assert len(seen_connections) <= POOL and endpoint.connections_opened <= POOL, (seen_connections, endpoint.connections_opened)
            assert not [m for m in client.messages if m.type == 1], [m.message for m in client.messages]
    finally:
        endpoint.stop()


async def test_cancel_storm_leaves_the_pool_usable(tmp_path: Path) -> None:
    """40 concurrent resolves over a pool of 2 slow sockets; 12 of them are cancelled by the user
    (window/workDoneProgress/cancel) while queued or streaming. Every other resolve returns its
    own correct edit, every cancelled one fails cleanly, and afterwards the pool serves a new
    batch in full: no slot was leaked."""
    import random

    endpoint = ModelEndpoint(api_key=TEST_API_KEY, reply_for=reply_for, latency_range=(0.02, 0.08)).start()
    try:
        async with lsp_client(endpoint, root=tmp_path, init_options={"poolSize": 2, "prefetch": False}) as client:
            await wait_ready(client)
            actions: dict[int, Any] = {}
            for n in range(8):
                uri = (tmp_path / f"doc{n:02d}.py").as_uri()
                open_document(client, uri, source(n), version=1)
                cursor = types.Position(line=4, character=4)
                listed = await list_actions(client, uri, types.Range(start=cursor, end=cursor))
                actions[n] = next(a for a in listed if a.title == f"Fix bug in f_{n:02d}")
            jobs = [n % 8 for n in range(40)]
            running = asyncio.gather(*(client.code_action_resolve_async(actions[n]) for n in jobs), return_exceptions=True)
            def live() -> list[Any]:
                return [t for t, reports in client.progress_reports.items() if reports and reports[-1].kind != "end"]

            await wait_for(lambda: len(live()) >= 12, "12 resolves in progress")
            rng = random.Random(8)
            for token in rng.sample(live(), 12):
                client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
            results = await asyncio.wait_for(running, 60)
            failed = [r for r in results if isinstance(r, BaseException)]
            assert 1 <= len(failed) <= 12, failed
            for n, result in zip(jobs, results):
                if not isinstance(result, BaseException):
                    (change,) = result.edit.document_changes
                    assert change.text_document.uri.endswith(f"/doc{n:02d}.py")
                    assert applied(source(n), change) == fixed(n)
            # The pool is whole again.
            again = await asyncio.wait_for(
                asyncio.gather(*(client.code_action_resolve_async(actions[n]) for n in range(8))), 60
            )
            for n, result in enumerate(again):
                assert applied(source(n), result.edit.document_changes[0]) == fixed(n)
    finally:
        endpoint.stop()
