"""Retell as a VoicePlatform: ``events``, ``inbound`` and ``functions/{tool}`` hooks, each
signed with ``X-Retell-Signature``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.platform import (
    ContextReply,
    Hook,
    ToolSpecs,
    VoicePlatform,
    WebhookDefaults,
    header,
    no_settings,
    secrets,
    single_outcome,
)
from connectors.retell import mapping, webhooks
from connectors.retell.tools import TOOL_TIMEOUT_MS, tool_definitions
from core.calls.events import CallEnded, CanonicalEvent, ToolCall, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.tools.builtins import ToolOutcome


class Retell(WebhookDefaults):
    name = "retell"
    tool_deadline_s = TOOL_TIMEOUT_MS / 1000.0
    caller_number_fields: tuple[str, ...] = ("from_number",)
    hooks: tuple[Hook, ...] = (
        # call_analyzed lands here too: its analysis is upserted, no workflow starts.
        Hook("events", "Retell agent event webhook"),
        Hook("inbound", "Retell phone-number inbound webhook"),
        Hook("functions", "Retell custom function (one per tool)", per_tool=True),
    )
    url_setting = "the webhook URL"
    # llm_token: the secret in the custom LLM WebSocket URL (connectors/retell/llm_ws.py).
    credential_kinds: tuple[str, ...] = ("api_key", "llm_token")

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
            secrets(credentials, "api_key"),
            agent_id=agent_id,
        )

    def parse(
        self, body: Mapping[str, Any], *, hook: str = "", tool_name: str = "", id_key: str = ""
    ) -> CanonicalEvent:
        if hook == "inbound":
            return webhooks.parse_inbound(body, id_key=id_key)
        if hook == "functions":
            return webhooks.parse_function_call(body, tool_name)
        return webhooks.parse_event(body)

    def parse_call_ended(self, body: Mapping[str, Any]) -> CallEnded:
        return webhooks.parse_call_ended(body)

    def context_reply(self, answer: ContextReply) -> dict[str, Any]:
        # A version whose model names a Retell agent overrides the agent for this call.
        override = answer.prompt.model.get("retell_agent_id") if answer.prompt else None
        return mapping.inbound_reply(
            answer.variables,
            override_agent_id=str(override) if override else None,
            # Comes back on the call object, linking this answer to the call's later events.
            metadata={"backline_agent_id": answer.agent_id, "backline_inbound_id": answer.call_id},
        )

    def tool_reply(
        self, batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
    ) -> dict[str, Any]:
        return mapping.function_reply(single_outcome(batch, results))

    def export_tools(self, tools: ToolSpecs, base_url: str, agent_id: str) -> list[dict[str, Any]]:
        return tool_definitions(tools, base_url, agent_id)


RETELL: VoicePlatform = Retell()
