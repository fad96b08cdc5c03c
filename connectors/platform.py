"""The port every voice platform's connector implements: one ``VoicePlatform`` object per
platform, listed in ``connectors.registry``.

The object wraps what its package already has (``webhooks.py`` verifies and parses,
``mapping.py`` shapes replies, ``tools.py`` exports tool definitions); the one webhook router
(``api/routes/webhooks.py``), the tool router and the tool export reach a platform through it,
never through a platform's name. Its ``hooks`` are its webhook URLs, so a new platform needs no
route of its own. ``WebhookDefaults`` holds the replies most platforms share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.calls.answering import Answer, prompt_variables
from core.calls.events import CallEnded, CanonicalEvent, ContextRequest, ToolCall, ToolCallBatch
from core.calls.ports import PlatformCredential
from core.errors import InvalidInputError
from core.knowledge.schemas import KnowledgeAnswer
from core.memory.schemas import CallerContext
from core.prompts.serving import ServedPrompt
from core.tenancy.agent_info import AgentInfo
from core.tools.builtins import ToolOutcome

ToolSpecs = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ContextReply:
    """What the answer to a context request carries to the platform."""

    agent_id: str
    call_id: str
    variables: dict[str, str]  # backline_* and the served version's variables
    prompt: ServedPrompt | None = None
    # BACKLINE_PUBLIC_URL, for tool definitions sent with the reply
    public_url: str = ""
    # This platform's settings document on the agent (``Agent.platform_settings[name]``) as
    # its ``validate_settings`` accepted it, e.g. the platform's own agent to answer with.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # The caller's memory as data, for a platform whose reply carries it as such (custom).
    context: CallerContext | None = None

    def version_tools(self) -> ToolSpecs:
        """The served version's declared tools by name (empty without a version or tools)."""
        return {t["name"]: dict(t) for t in self.prompt.tools} if self.prompt is not None else {}


def context_reply(
    agent: AgentInfo, event: ContextRequest, answer: Answer, public_url: str
) -> ContextReply:
    """What a platform's context reply is shaped from."""
    return ContextReply(
        agent_id=agent.id,
        call_id=event.call.call_id,
        variables=prompt_variables(answer),
        prompt=answer.prompt,
        public_url=public_url,
        settings=agent.platform_settings.get(event.call.platform, {}),
        context=answer.context,
    )


@dataclass(frozen=True)
class Hook:
    """One webhook URL of a platform: ``/v1/webhooks/{platform}/{agent_id}``, then ``/{name}``
    unless the name is empty, then ``/{tool_name}`` for a per-tool URL."""

    name: str
    summary: str  # the OpenAPI summary of the URL
    per_tool: bool = False


class VoicePlatform(Protocol):
    """One voice platform, as the webhook router and the answering service's adapters need it."""

    name: str
    # How long the platform waits for a tool answer (the timeout its exported tools set).
    tool_deadline_s: float
    # The JSON fields of its payloads that carry the caller's number.
    caller_number_fields: tuple[str, ...]
    # Its webhook URLs; any other URL under the platform answers 404.
    hooks: tuple[Hook, ...]
    # Where an integrator set the URL, for the error naming an agent that does not exist.
    url_setting: str
    # How long a context request may take before the reply goes out without caller memory
    # (``AnsweringService.fallback_answer``); None: no budget, the reply waits for the answer.
    context_budget_s: float | None
    # The kinds of credential an agent may store for it (PUT /v1/agents/{id}/credentials/{name}).
    credential_kinds: tuple[str, ...]

    def validate_settings(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The agent's settings document for this platform, checked: InvalidInputError (422)
        naming the first key that is unknown or has the wrong type."""
        ...

    def verify(
        self,
        headers: Mapping[str, str],
        raw: bytes,
        credentials: Sequence[PlatformCredential],
        *,
        agent_id: str,
        hook: str = "",
    ) -> None:
        """Raise WebhookSignatureError unless one of the agent's credentials authenticates
        ``raw``; ``hook`` names which of the platform's webhook URLs was called."""
        ...

    def parse(
        self, body: Mapping[str, Any], *, hook: str = "", tool_name: str = "", id_key: str = ""
    ) -> CanonicalEvent:
        """The request as a canonical event (``tool_name`` from a per-tool URL, ``id_key`` for
        ids derived from a caller's number)."""
        ...

    def parse_call_ended(self, body: Mapping[str, Any]) -> CallEnded:
        """An end-of-call payload (as stored in the inbox) as its canonical event."""
        ...

    def correction_base(self, body: Mapping[str, Any], *, hook: str) -> str | None:
        """The call id whose earlier end-of-call payloads ``body`` corrects, when it is only a
        correction (Bland's delayed corrected transcript); None for a payload that stands
        alone."""
        ...

    def merge_correction(
        self, body: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]
    ) -> tuple[CallEnded, bytes]:
        """A correction laid over the earlier payloads of its call: the whole call as its event
        and the merged payload the inbox keeps instead of what was sent."""
        ...

    def context_reply(self, answer: ContextReply) -> dict[str, Any]: ...

    def tool_reply(
        self, batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
    ) -> dict[str, Any]: ...

    def knowledge_reply(self, answer: KnowledgeAnswer | None) -> dict[str, Any]: ...

    def transfer_reply(self) -> dict[str, Any]: ...

    def recorded_reply(self) -> dict[str, Any]:
        """The reply to an event that is only recorded (call started, transcript...)."""
        ...

    def accepted_reply(self, receipt: Mapping[str, Any]) -> dict[str, Any]:
        """The reply to an end-of-call payload the inbox took (``status``, ``duplicate``,
        ``revision``, ``workflow_id``, ``workflow_started``)."""
        ...

    def export_tools(self, tools: ToolSpecs, base_url: str, agent_id: str) -> list[dict[str, Any]]:
        """Backline's tools as the platform's tool definitions, pointing at this agent."""
        ...


NO_TRANSFER = "No transfer destination is configured for this agent."


class WebhookDefaults:
    """What most platforms answer alike; a platform class inherits it and overrides."""

    context_budget_s: float | None = None

    def correction_base(self, body: Mapping[str, Any], *, hook: str) -> str | None:
        return None

    def merge_correction(
        self, body: Mapping[str, Any], earlier: Sequence[Mapping[str, Any]]
    ) -> tuple[CallEnded, bytes]:
        raise NotImplementedError("this platform sends no end-of-call corrections")

    def knowledge_reply(self, answer: KnowledgeAnswer | None) -> dict[str, Any]:
        return {"documents": []}

    def transfer_reply(self) -> dict[str, Any]:
        return {"error": NO_TRANSFER}

    def recorded_reply(self) -> dict[str, Any]:
        return {"status": "recorded"}

    def accepted_reply(self, receipt: Mapping[str, Any]) -> dict[str, Any]:
        return dict(receipt)


def single_outcome(
    batch: ToolCallBatch, results: Sequence[tuple[ToolCall, ToolOutcome]]
) -> ToolOutcome:
    """The outcome of a one-tool URL (Retell, Bland): one call, one answer."""
    if results:
        return results[0][1]
    return ToolOutcome(error=f"tool '{batch.calls[0].name}' produced no answer")


def no_settings(platform: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """``validate_settings`` for a platform that takes no per-agent settings: only ``{}``."""
    for key in doc:
        raise InvalidInputError(
            f"platform_settings.{platform}.{key}: unknown setting; {platform} takes none"
        )
    return {}


def secrets(credentials: Sequence[PlatformCredential], kind: str) -> list[str]:
    return [c.secret for c in credentials if c.kind == kind]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case in ``headers``."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value
