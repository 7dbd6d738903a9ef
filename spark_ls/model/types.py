"""Plain data exchanged with a model, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """Why a model request failed. A ``str``: ``kind == "auth"`` and ``ModelError("auth", ...)`` work."""

    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    SERVER = "server"
    NETWORK = "network"
    TIMEOUT = "timeout"
    RETIRED = "retired"
    PINNED = "pinned"
    PROTOCOL = "protocol"
    TOO_LARGE = "too_large"
    REPLAY_MISS = "replay_miss"
    CONFIG = "config"
    CANCELLED = "cancelled"
    UNAVAILABLE = "unavailable"

    @property
    def lasting(self) -> bool:
        """A failure that retrying will not cure (a bad key, a missing local model, a retired
        pinned model): the session reports it as its problem, and ``check`` stops on it."""
        return self in _LASTING


_LASTING = frozenset({ErrorKind.AUTH, ErrorKind.CONFIG, ErrorKind.UNAVAILABLE, ErrorKind.PINNED, ErrorKind.RETIRED})


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

    def __init__(
        self, kind: ErrorKind | str, message: str, *, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)  # ValueError for an unknown kind
        self.message = message
        self.retry_after = retry_after
        self.status = status

    def __str__(self) -> str:
        return self.message
