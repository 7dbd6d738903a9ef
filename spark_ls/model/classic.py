"""Classic mode: the configured model, explicit fallbacks, pinning, and ``spark-ls models``.

When the endpoint says the model in use is retired (``model_not_found`` / HTTP 404):
- pinned -> ModelError "pinned" naming the model and how to choose another;
- not pinned -> the next configured fallback, announced once through ``notify`` and kept for
  the rest of the session; none left -> ModelError "retired".
The session never switches model silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from spark_ls.config import Settings
from spark_ls.model.transport import error_from_status, redact
from spark_ls.model.types import ModelError

Notify = Callable[[str, str], None]


class ModelChooser:
    """Which model the session uses, and what happens when it is retired."""

    def __init__(self, settings: Settings, notify: Notify | None = None) -> None:
        self.candidates: list[str] = []
        for name in (settings.model, *settings.fallback_models):
            if name and name not in self.candidates:
                self.candidates.append(name)
        self.pin = settings.pin
        self._notify = notify
        self._index = 0
        self.retired: dict[str, str] = {}  # model -> the endpoint's reason

    @property
    def current(self) -> str:
        return self.candidates[self._index]

    def retire(self, model: str, reason: str) -> str:
        """Mark ``model`` retired; return the model to use instead or raise ModelError."""
        if model != self.current:
            return self.current  # another request already moved on
        self.retired[model] = reason
        why = reason or "model_not_found"
        if self.pin:
            raise ModelError(
                "pinned",
                f"The pinned model `{model}` is no longer available at this endpoint ({why}). "
                "Choose another: set `model` (or `fallback_models`) in [tool.spark-ls] or your editor "
                "settings, or set `pin = false` to allow the configured fallbacks.",
                status=404,
            )
        if self._index + 1 >= len(self.candidates):
            tried = ", ".join(f"`{m}`" for m in self.candidates)
            raise ModelError(
                "retired",
                f"The model `{model}` is no longer available at this endpoint ({why}) and no fallback is left "
                f"(tried {tried}). Set `model` or `fallback_models` in [tool.spark-ls] to a current model "
                "(`spark-ls models` lists what the endpoint offers).",
                status=404,
            )
        self._index += 1
        successor = self.current
        if self._notify is not None:
            self._notify(
                "warning",
                f"spark-ls: model `{model}` is retired or unavailable ({why}); using fallback `{successor}` "
                f"for this session. To stay on one model, set `model = \"{successor}\"` and `pin = true` "
                "in [tool.spark-ls].",
            )
        return successor


MODEL_SERVER_OWNER = "spark-ls"  # `owned_by` of the models `spark-ls model-server` lists


@dataclass(frozen=True)
class ModelStatus:
    name: str
    role: str  # "model" | "fallback" | "local"
    available: bool
    shutdown_date: str | None = None
    note: str = ""


async def list_models(settings: Settings) -> list[ModelStatus]:
    """Configured models (model + fallbacks) checked against ``GET {base_url}/models``."""
    if settings.uses_local_model:
        try:
            from spark_ls.model import local  # noqa: F401  (lazy: pulls in the runtime)

            ok, note = True, "embedded local model"
        except ImportError as exc:  # the optional runtime is not installed
            ok, note = False, f"embedded local model unavailable: {type(exc).__name__}"
        return [ModelStatus(name="local", role="local", available=ok, note=note)]
    secret = settings.api_key.reveal() if settings.api_key else None
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    url = settings.effective_base_url + "/models"
    try:
        async with httpx.AsyncClient(verify=settings.tls_verify, timeout=settings.connect_timeout + 10) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ModelError("network", f"Cannot reach {settings.effective_base_url}: {redact(str(exc) or type(exc).__name__, secret)}") from None
    if response.status_code >= 400:
        try:
            payload = response.json()
        except (ValueError, json.JSONDecodeError):
            payload = None
        err = error_from_status(response.status_code, payload if isinstance(payload, dict) else None, secret)
        raise err if isinstance(err, ModelError) else ModelError("protocol", f"GET {url} failed (HTTP {response.status_code})")
    try:
        data = response.json().get("data") or []
    except (ValueError, AttributeError):
        raise ModelError("protocol", f"GET {url} did not return a model list") from None
    offered = {str(m.get("id")): m for m in data if isinstance(m, dict)}
    statuses: list[ModelStatus] = []
    chooser = ModelChooser(settings)
    served = next((name for name, m in offered.items() if m.get("owned_by") == MODEL_SERVER_OWNER), None)
    if served is not None:
        # `spark-ls model-server` answers every model name with its one local model.
        hint = "" if settings.edit_format == "scope" else " (set edit_format = scope / SPARK_LS_EDIT_FORMAT=scope)"
        note = f"answered by spark-ls model-server ({served}){hint}"
        return [
            ModelStatus(name, "model" if i == 0 else "fallback", True, None, note)
            for i, name in enumerate(chooser.candidates)
        ]
    for i, name in enumerate(chooser.candidates):
        entry = offered.get(name)
        role = "model" if i == 0 else "fallback"
        if entry is None:
            statuses.append(ModelStatus(name, role, False, None, "not offered by the endpoint (retired or no access)"))
        else:
            shutdown = entry.get("shutdown_date")
            note = f"scheduled for shutdown on {shutdown}" if shutdown else ""
            statuses.append(ModelStatus(name, role, True, str(shutdown) if shutdown else None, note))
    return statuses


def format_models(statuses: list[ModelStatus]) -> str:
    """A small table for ``spark-ls models``."""
    rows = [("MODEL", "ROLE", "STATUS", "SHUTDOWN", "NOTE")]
    for s in statuses:
        rows.append((s.name, s.role, "available" if s.available else "missing", s.shutdown_date or "-", s.note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + ("  " + r[4] if r[4] else "") for r in rows]
    return "\n".join(line.rstrip() for line in lines)
