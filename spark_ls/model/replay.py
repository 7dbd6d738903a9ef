"""Record/replay of model traffic, for byte-identical CI runs without an endpoint.

One JSON object per line: ``{"key", "model", "instructions_head", "input_head", "reply": {...}}``.
The key is the sha256 of the normalised request — configured model, instructions, context and
input — never ids, headers or keys. Nothing secret is written: only the request text (which the
caller already has) and the reply.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from spark_ls.model.types import ModelError, ModelReply, ModelRequest


def request_key(model: str, req: ModelRequest) -> str:
    normalised = {
        "model": model,
        "instructions": req.instructions,
        "context": getattr(req, "context", "") or "",
        "input": req.input,
    }
    blob = json.dumps(normalised, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _first_line(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


class Recorder:
    """Appends every successful exchange to ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, model: str, req: ModelRequest, reply: ModelReply) -> None:
        entry: dict[str, Any] = {
            "key": request_key(model, req),
            "model": model,
            "input_head": _first_line(req.input),
            "reply": {"text": reply.text, "model": reply.model, "response_id": reply.response_id, "usage": reply.usage},
        }
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)


class Replayer:
    """Answers from a recording; a request it has not seen is a ``replay_miss``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._replies: dict[str, ModelReply] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError("config", f"Cannot read the replay file {self.path}: {exc.strerror or exc}") from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                reply = entry["reply"]
                self._replies[str(entry["key"])] = ModelReply(
                    text=str(reply["text"]),
                    model=str(reply.get("model") or entry.get("model") or ""),
                    response_id=reply.get("response_id"),
                    usage=dict(reply.get("usage") or {}),
                )
            except (ValueError, KeyError, TypeError):
                raise ModelError("config", f"{self.path}:{number}: not a spark-ls recording line") from None

    def __len__(self) -> int:
        return len(self._replies)

    def reply(self, model: str, req: ModelRequest) -> ModelReply:
        key = request_key(model, req)
        found = self._replies.get(key)
        if found is None:
            raise ModelError(
                "replay_miss",
                f"No recorded reply for request {key[:12]} (input starts: {_first_line(req.input)!r}) in {self.path}. "
                "Re-record with `record` set, or check that the prompt and model did not change.",
            )
        return found
