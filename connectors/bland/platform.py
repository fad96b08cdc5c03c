"""Bland as a VoicePlatform: ``dynamic-data`` and ``tools/{tool}`` hooks carry the agent's tool
token as a bearer; ``post-call`` payloads are signed with ``X-Webhook-Signature``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.bland import mapping, webhooks
from connectors.bland.tools import tool_definitions
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
from core.calls.events import CallEnded, CanonicalEvent, ToolCall, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.tools.builtins import ToolOutcome

POST_CALL = "post-call"


class Bland(WebhookDefaults):
    name = webhooks.PLATFORM
    # Bland's tool timeout is the developer's to set; it gets Retell's 10 s.
    tool_deadline_s = 10.0
    caller_number_fields: tuple[str, ...] = ("from", "caller")
    hooks: tuple[Hook, ...] = (
        Hook("dynamic-data", "Bland dynamic_data fetch (caller context)"),
        Hook("tools", "Bland custom tool (one per tool)", per_tool=True),
        Hook(POST_CALL, "Bland post-call webhook"),
    )
    url_setting = "the URL set in Bland"
    # Bland's dynamic_data default timeout is 2000 ms and developers often set less (1500 in
    # the documented example); past this budget the caller gets an empty context instead.
    context_budget_s: float | None = 1.0
    credential_kinds: tuple[str, ...] = ("signing_secret", "tool_token")

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
        if hook == POST_CALL:
            webhooks.verify_post_call_request(
                raw,
                header(headers, webhooks.SIGNATURE_HEADER),
                secrets(credentials, "signing_secret"),
                agent_id=agent_id,
            )
        else:
            webhooks.verify_tool_request(
                header(headers, "authorization"),
                secrets(credentials, "tool_token"),
                agent_id=agent_id,
            )

    def parse(
        self, body: Mapping[str, Any], *, hook: str = "", tool_name: str = "", id_key: str = ""
    ) -> CanonicalEvent:
        if hook == "dynamic-data":
            return webhooks.parse_dynamic_data(body)
        if hook == "tools":
            return webhooks.parse_tool_call(body, tool_name)
        if hook == POST_CALL:
            return webhooks.parse_post_call(body)
        raise ValueError(f"Bland has no '{hook}' webhook")

    def parse_call_ended(self, body: Mapping[str, Any]) -> CallEnded:
        return webhooks.parse_post_call(body)

    def correction_base(self, body: Mapping[str, Any], *, hook: str) -> str | None:
        # Bland's delayed POST may carry only the corrected transcript.
        if hook == POST_CALL and webhooks.is_correction_only(body):
            return webhooks.require_call_id(body)
        return None

    def merge_correction(
        self, body: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]
    ) -> tuple[CallEnded, bytes]:
        # Laid over the call object received first, the inbox row is a whole call again
        # (caller, times, ids) and the post-call activity needs nothing but that row.
        merged = webhooks.merge_correction(earlier, body)
        return webhooks.parse_post_call(merged), webhooks.encode_payload(merged)

    def context_reply(self, answer: ContextReply) -> dict[str, Any]:
        return mapping.dynamic_data_reply(answer.variables)

    def tool_reply(
        self, batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
    ) -> dict[str, Any]:
        return mapping.tool_reply(single_outcome(batch, results))

    def export_tools(self, tools: ToolSpecs, base_url: str, agent_id: str) -> list[dict[str, Any]]:
        return tool_definitions(tools, base_url, agent_id)


BLAND: VoicePlatform = Bland()
