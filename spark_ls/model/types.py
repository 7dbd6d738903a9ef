"""Plain data exchanged with a model, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelRequest:
    instructions: str
    input: str
    # Requests with the same conversation key (a document URI) may be chained with
    # previous_response_id so the unchanged file context is not sent again.
    conversation: str | None = None
    max_output_tokens: int | None = None
    # Stable context (e.g. the file text) sent before ``input``. A request chained with
    # previous_response_id omits it when it equals the previous turn's context; otherwise the
    # full context is resent. Empty: everything is in ``input`` and requests are not chained.
    context: str = ""


@dataclass(frozen=True)
class ModelReply:
    text: str
    model: str
    response_id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


class ModelError(Exception):
    """A model request failed. ``message`` is safe to show to the user: it never holds a key."""

    KINDS = frozenset(
        {
            "auth", "rate_limit", "server", "network", "timeout", "retired", "pinned",
            "protocol", "too_large", "replay_miss", "config", "cancelled", "unavailable",
        }
    )

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        assert kind in self.KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.status = status

    def __str__(self) -> str:
        return self.message
