"""Request and response models of the knowledge API, and the retrieval answer.

``KnowledgeAnswer`` is platform-neutral: connectors turn it into a VAPI ``documents`` reply or a
tool result. Raw fetched content never appears in a public model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from core.db import INT_COLUMN_MAX

SourceKind = Literal["file", "url", "text"]
FreshnessState = Literal["pending", "fresh", "stale", "failing"]
AnswerStatus = Literal["ok", "partial", "outdated", "empty"]

MAX_INTERVAL_S = 90 * 86400
MIN_INTERVAL_S = 60
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


KB_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$"


class KnowledgeBaseCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=KB_NAME_PATTERN)


class KnowledgeBasePublic(BaseModel):
    id: str
    org_id: str
    agent_id: str
    name: str
    version: int
    created_at: datetime


class FreshnessPolicy(BaseModel):
    """How often a source is re-checked, and how old its last check may be before its chunks
    are withheld as outdated. ``None`` means never (no schedule / never outdated)."""

    refresh_interval_s: int | None = Field(
        strict=True, default=None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S
    )
    max_staleness_s: int | None = Field(
        strict=True, default=None, ge=MIN_INTERVAL_S, le=INT_COLUMN_MAX
    )

    @model_validator(mode="after")
    def _staleness_covers_interval(self) -> FreshnessPolicy:
        i, m = self.refresh_interval_s, self.max_staleness_s
        if i is not None and m is not None and m < i:
            raise ValueError(
                f"max_staleness_s ({m}) is shorter than refresh_interval_s ({i}): every source "
                "would turn stale between two scheduled refreshes; raise max_staleness_s"
            )
        return self


class SourceCreate(FreshnessPolicy):
    kind: SourceKind
    name: str = Field(min_length=1, max_length=200)
    kb: str = Field(default="default", min_length=1, max_length=100, pattern=KB_NAME_PATTERN)
    url: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=MAX_UPLOAD_BYTES)
    filename: str | None = Field(default=None, max_length=255)
    content_base64: str | None = Field(default=None, description="File content, base64")
    content_type: str | None = Field(default=None, max_length=100)
    origin_path: str | None = Field(
        default=None,
        max_length=1000,
        description="File sources: the path the client read the file from, so it can upload "
        "it again when it changes (recorded only; the server never reads it)",
    )
    refresh: bool = Field(default=True, description="Start a refresh right away")

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    @model_validator(mode="after")
    def _content_matches_kind(self) -> SourceCreate:
        if self.kind == "url" and not self.url:
            raise ValueError("a url source needs 'url'")
        if self.kind == "text" and not (self.text and self.text.strip()):
            raise ValueError("a text source needs a non-empty 'text'")
        if self.kind == "file" and not (self.content_base64 and self.filename):
            raise ValueError("a file source needs 'filename' and 'content_base64'")
        return self


class SourceUpdate(BaseModel):
    """Fields left out stay as they are; an explicit null clears a freshness setting."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=MAX_UPLOAD_BYTES)
    filename: str | None = Field(default=None, max_length=255)
    content_base64: str | None = None
    content_type: str | None = Field(default=None, max_length=100)
    origin_path: str | None = Field(default=None, max_length=1000)
    refresh_interval_s: int | None = Field(
        strict=True, default=None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S
    )
    max_staleness_s: int | None = Field(
        strict=True, default=None, ge=MIN_INTERVAL_S, le=INT_COLUMN_MAX
    )
    refresh: bool = True


class SourcePublic(BaseModel):
    id: str
    org_id: str
    agent_id: str
    kb_id: str
    kb_name: str
    kind: str
    name: str
    url: str | None
    filename: str | None
    origin_path: str | None = Field(
        default=None, description="File sources: the path the CLI uploaded it from"
    )
    refresh_interval_s: int | None
    max_staleness_s: int | None
    freshness: FreshnessState
    age_s: float | None = Field(description="Seconds since the last successful check")
    status: str
    verified_at: datetime | None
    fetched_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    failure_count: int
    chunk_count: int
    document_count: int
    content_hash: str | None
    schedule_synced: bool
    index_pending: bool = Field(
        default=False, description="Chunk changes committed but not yet in the search index"
    )
    created_at: datetime
    updated_at: datetime


class RefreshStarted(BaseModel):
    source_id: str
    workflow_id: str
    run_id: str | None
    joined_running: bool = Field(
        description="True when a refresh of this source was already running and this request "
        "joined it instead of starting a second one"
    )


class CallHandle(BaseModel):
    platform: Literal["vapi", "retell", "bland", "custom"]
    call_id: str = Field(min_length=1, max_length=256)


class KnowledgeSearch(BaseModel):
    agent_id: str
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(strict=True, default=5, ge=1, le=20)
    kb: str | None = Field(default=None, description="Knowledge base name; all when omitted")
    normalize: bool = Field(default=True, description="Apply the speech-to-text normalizer")
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    call: CallHandle | None = Field(default=None, description="Record the retrieval on a call")


class KnowledgeHit(BaseModel):
    chunk_id: str
    text: str
    title: str
    section: str
    score: float = Field(description="Fused rank score (reciprocal rank fusion)")
    similarity: float | None = Field(description="Cosine similarity of the dense match")
    dense_rank: int | None
    keyword_rank: int | None
    source_id: str
    source_name: str
    kb_id: str
    position: int
    fetched_at: datetime
    verified_at: datetime | None
    age_s: float | None
    freshness: FreshnessState


class WithheldHit(BaseModel):
    chunk_id: str
    source_id: str
    source_name: str
    section: str
    freshness: FreshnessState
    verified_at: datetime | None
    reason: str


class KnowledgeAnswer(BaseModel):
    query: str
    normalized_query: str
    status: AnswerStatus = Field(
        description="ok: the best match is current; partial: the best match was withheld as "
        "outdated but current matches remain; outdated: every match was withheld; empty: none"
    )
    hits: list[KnowledgeHit] = Field(default_factory=list)
    withheld: list[WithheldHit] = Field(default_factory=list)
    spoken_fallback: str | None = Field(
        default=None, description="What the agent can say instead of outdated information"
    )
    latency_ms: float = 0.0
