"""spark/lastPrompt (a spark-ls request): the prompt of the last action sent to the model, for
the editor's "Show prompt" command. Keys are redacted: the configured API key and anything
key-shaped (``sk-…``, ``Bearer …``) in the text, e.g. a key pasted into the code being fixed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spark_ls.model.transport import redact

if TYPE_CHECKING:
    from spark_ls.server.app import SparkLanguageServer

LAST_PROMPT = "spark/lastPrompt"


def last_prompt(server: SparkLanguageServer) -> dict[str, Any] | None:
    """The last prompt as plain data (None before the first action), redacted."""
    if server.last_prompt is None:
        return None
    action, model, request = server.last_prompt
    key = server.settings.api_key.reveal() if server.settings.api_key else None
    return {
        "action": action,
        "model": model,
        "instructions": redact(request.instructions, key),
        "context": redact(request.context, key),
        "input": redact(request.input, key),
    }


def register(server: SparkLanguageServer) -> None:
    @server.feature(LAST_PROMPT)
    def _last_prompt(ls: SparkLanguageServer, _params: Any = None) -> dict[str, Any] | None:
        return last_prompt(ls)
