"""The model layer: one session over WebSocket / HTTP SSE / chat / embedded transports."""

from spark_ls.model.classic import ModelStatus, format_models, list_models
from spark_ls.model.session import ModelSession, open_session
from spark_ls.model.types import ModelError, ModelReply, ModelRequest

__all__ = [
    "ModelError",
    "ModelReply",
    "ModelRequest",
    "ModelSession",
    "ModelStatus",
    "format_models",
    "list_models",
    "open_session",
]
