"""Monitoring API schemas: an agent's call quality, per prompt version, over a period."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class LayerMeans(BaseModel):
    infrastructure: float | None = Field(description="Mean infrastructure layer score (0..1)")
    execution: float | None = Field(description="Mean agent-execution layer score (0..1)")
    reaction: float | None = Field(description="Mean caller-reaction layer score (0..1)")
    outcome: float | None = Field(description="Mean business-outcome layer score (0..1)")


class QualityGroup(BaseModel):
    prompt_version: str | None = Field(
        description="The version ('v3'); null in the overall group and for calls no version served"
    )
    calls: int = Field(description="Scored calls")
    mean_score: float | None = Field(description="Mean overall score (0..100)")
    layers: LayerMeans
    layered_calls: int = Field(
        description="Calls scored with their evidence (the layer and metric means cover these)"
    )
    grounded_share: float | None = Field(
        description="Share of calls whose every stated number and name was grounded"
    )
    grounded_ratio: float | None = Field(description="Mean share of grounded claims per call")
    words_per_agent_turn: float | None
    tool_calls: int
    tool_failures: int
    tool_failure_rate: float | None = Field(description="Failed tool calls / tool calls")
    containment: float | None = Field(description="Share of calls not transferred to a human")
    stale_hits: int = Field(description="Outdated knowledge chunks met")


class AgentQuality(BaseModel):
    agent_id: str
    period: str
    since: datetime
    version: str | None = Field(description="The version asked for, if any")
    overall: QualityGroup
    versions: list[QualityGroup] = Field(description="One group per prompt version, newest first")
