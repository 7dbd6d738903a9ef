"""What the client can do, resolved once at initialize (as ruff's ResolvedClientCapabilities)."""

from __future__ import annotations

from dataclasses import dataclass

from lsprotocol import types

from spark_ls.server.convert import UTF16


@dataclass(frozen=True)
class ResolvedClientCapabilities:
    code_action_resolve: bool = False  # codeAction/resolve may fill in `edit`
    code_action_disabled: bool = False  # CodeAction.disabled is shown (with its reason)
    llm_tag: bool = False  # CodeActionTag.LlmGenerated is understood
    work_done_progress: bool = False  # window/workDoneProgress/create
    position_encoding: str = UTF16  # negotiated at initialize

    @classmethod
    def resolve(
        cls, caps: types.ClientCapabilities, position_encoding: types.PositionEncodingKind | str | None
    ) -> ResolvedClientCapabilities:
        code_action = caps.text_document.code_action if caps.text_document else None
        resolve = code_action.resolve_support if code_action else None
        tags = code_action.tag_support if code_action else None
        return cls(
            code_action_resolve=bool(resolve and "edit" in resolve.properties),
            code_action_disabled=bool(code_action and code_action.disabled_support),
            llm_tag=bool(tags and types.CodeActionTag.LlmGenerated in tags.value_set),
            work_done_progress=bool(caps.window and caps.window.work_done_progress),
            position_encoding=_encoding_name(position_encoding),
        )


def _encoding_name(encoding: types.PositionEncodingKind | str | None) -> str:
    if isinstance(encoding, types.PositionEncodingKind):
        return str(encoding.value)
    return encoding or UTF16
