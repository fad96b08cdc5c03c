"""VAPI as a VoicePlatform: one server URL for every message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.platform import ContextReply, Hook, ToolSpecs, VoicePlatform, WebhookDefaults
from connectors.vapi import knowledge, mapping, webhooks
from connectors.vapi.tools import TOOL_TIMEOUT_S, tool_definitions
from core.calls.events import CallEnded, CanonicalEvent, ToolCall, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.errors import InvalidInputError
from core.knowledge.schemas import KnowledgeAnswer
from core.tools.builtins import ToolOutcome

# The agent's VAPI settings: the assistant answered on ``assistant-request``, by id or inline
# (the inline assistant wins when both are set). A null value is the same as leaving it out.
MAX_ASSISTANT_ID = 256


def validate_settings(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        where = f"platform_settings.vapi.{key}"
        if key == "assistant_id":
            if value is not None and (
                not isinstance(value, str) or not 0 < len(value) <= MAX_ASSISTANT_ID
            ):
                raise InvalidInputError(
                    f"{where}: must be a string of 1 to {MAX_ASSISTANT_ID} characters"
                )
        elif key == "assistant":
            if value is not None and not isinstance(value, dict):
                raise InvalidInputError(f"{where}: must be an object (an inline VAPI assistant)")
        else:
            raise InvalidInputError(
                f"{where}: unknown setting; vapi takes 'assistant_id' and 'assistant'"
            )
        if value is not None:
            out[key] = value
    return out


class Vapi(WebhookDefaults):
    name = "vapi"
    tool_deadline_s = float(TOOL_TIMEOUT_S)
    caller_number_fields: tuple[str, ...] = ("number",)  # customer.number
    # One server URL for every message: /v1/webhooks/vapi/{agent_id}
    hooks: tuple[Hook, ...] = (Hook("", "VAPI server URL"),)
    url_setting = "the server URL"
    credential_kinds: tuple[str, ...] = ("bearer", "hmac")

    def validate_settings(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return validate_settings(doc)

    def verify(
        self,
        headers: Mapping[str, str],
        raw: bytes,
        credentials: Sequence[PlatformCredential],
        *,
        agent_id: str,
        hook: str = "",
    ) -> None:
        webhooks.verify_request(headers, raw, credentials)

    def parse(
        self, body: Mapping[str, Any], *, hook: str = "", tool_name: str = "", id_key: str = ""
    ) -> CanonicalEvent:
        return webhooks.parse_event(body)

    def parse_call_ended(self, body: Mapping[str, Any]) -> CallEnded:
        return webhooks.parse_call_ended(body)

    def context_reply(self, answer: ContextReply) -> dict[str, Any]:
        declared = answer.version_tools()
        return mapping.assistant_request_reply(
            assistant_id=answer.settings.get("assistant_id"),
            assistant=answer.settings.get("assistant"),
            variables=answer.variables,
            prompt=answer.prompt,
            tools=tool_definitions(declared, answer.public_url, answer.agent_id)
            if declared
            else None,
        )

    def tool_reply(
        self, batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
    ) -> dict[str, Any]:
        return mapping.tool_calls_reply(
            [
                mapping.ToolResult(tc.tool_call_id, tc.name, out.result, out.error)
                for tc, out in results
            ]
        )

    def knowledge_reply(self, answer: KnowledgeAnswer | None) -> dict[str, Any]:
        if answer is None:
            return {"documents": []}
        return knowledge.knowledge_base_reply(answer)

    def export_tools(self, tools: ToolSpecs, base_url: str, agent_id: str) -> list[dict[str, Any]]:
        return tool_definitions(tools, base_url, agent_id)


VAPI: VoicePlatform = Vapi()
