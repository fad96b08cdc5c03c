"""The ``custom`` platform as a VoicePlatform: one signed URL for every message of Backline's
own contract (``docs/custom-platform.md``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.custom import mapping, webhooks
from connectors.custom.tools import TOOL_TIMEOUT_S, tool_definitions
from connectors.platform import (
    ContextReply,
    Hook,
    ToolSpecs,
    VoicePlatform,
    WebhookDefaults,
    header,
    no_settings,
    secrets,
)
from core.calls.events import CallEnded, CanonicalEvent, ToolCall, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.knowledge.schemas import KnowledgeAnswer
from core.tools.builtins import ToolOutcome


class Custom(WebhookDefaults):
    name = webhooks.PLATFORM
    tool_deadline_s = float(TOOL_TIMEOUT_S)
    caller_number_fields: tuple[str, ...] = ("caller_number",)
    credential_kinds: tuple[str, ...] = (webhooks.CREDENTIAL_KIND,)
    # One signed URL for every message: /v1/webhooks/custom/{agent_id}
    hooks: tuple[Hook, ...] = (Hook("", "Custom voice stack webhook (Backline's own contract)"),)
    url_setting = "the webhook URL"

    def validate_settings(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return no_settings(self.name, doc)

    def verify(
        self,
        headers: Mapping[str, str],
        raw: bytes,
        credentials: Sequence[PlatformCredential],
        *,
        agent_id: str,
        hook: str = "",
    ) -> None:
        webhooks.verify_request(
            raw,
            header(headers, webhooks.SIGNATURE_HEADER),
            secrets(credentials, webhooks.CREDENTIAL_KIND),
            agent_id=agent_id,
        )

    def parse(
        self, body: Mapping[str, Any], *, hook: str = "", tool_name: str = "", id_key: str = ""
    ) -> CanonicalEvent:
        return webhooks.parse_event(body)

    def parse_call_ended(self, body: Mapping[str, Any]) -> CallEnded:
        return webhooks.parse_call_ended(body)

    def context_reply(self, answer: ContextReply) -> dict[str, Any]:
        declared = answer.version_tools()
        return mapping.context_reply(
            call_id=answer.call_id,
            variables=answer.variables,
            context=answer.context,
            prompt=answer.prompt,
            tools=tool_definitions(declared, answer.public_url, answer.agent_id)
            if declared
            else [],
        )

    def tool_reply(
        self, batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
    ) -> dict[str, Any]:
        answered = {tc.tool_call_id: out for tc, out in results}
        # Every call of the batch is answered, in order, even one the edge had no outcome for.
        return mapping.tool_results_reply(
            [
                (
                    tc.tool_call_id,
                    answered.get(tc.tool_call_id)
                    or ToolOutcome(error=f"tool '{tc.name}' produced no answer"),
                )
                for tc in batch.calls
            ]
        )

    def knowledge_reply(self, answer: KnowledgeAnswer | None) -> dict[str, Any]:
        return mapping.knowledge_reply(answer)

    def recorded_reply(self) -> dict[str, Any]:
        return mapping.recorded_reply()

    def accepted_reply(self, receipt: Mapping[str, Any]) -> dict[str, Any]:
        return mapping.accepted_reply(receipt)

    def export_tools(self, tools: ToolSpecs, base_url: str, agent_id: str) -> list[dict[str, Any]]:
        return tool_definitions(tools, base_url, agent_id)


CUSTOM: VoicePlatform = Custom()
