"""Retention activities: list organizations and purge one organization's expired data through
core's ``RetentionService``. Each purge is idempotent (a retry finds nothing left to purge)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine
from temporalio import activity

from core.db import session_scope
from core.memory.service import MemoryService
from core.ports import Embedder, VectorStore
from core.tenancy.retention import RetentionService
from orchestration.retention_types import (
    ACT_LIST_ORGS,
    ACT_PURGE_ORG,
    ACT_PURGE_UNOWNED,
    ListOrgsInput,
    OrgList,
    OrgPurged,
    PurgeOrgInput,
    PurgeUnownedInput,
    PurgeUnownedResult,
)


class RetentionActivities:
    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        vectors: VectorStore,
        default_raw_payload_days: int,
    ) -> None:
        self._engine = engine
        self._embedder = embedder
        self._vectors = vectors
        self._default_days = default_raw_payload_days

    @activity.defn(name=ACT_LIST_ORGS)
    def list_orgs(self, _data: ListOrgsInput) -> OrgList:
        with session_scope(self._engine) as session:
            return OrgList(RetentionService(session, self._default_days).org_ids())

    @activity.defn(name=ACT_PURGE_ORG)
    def purge_org(self, data: PurgeOrgInput) -> OrgPurged:
        memory: MemoryService
        with session_scope(self._engine) as session:
            memory = MemoryService(session, self._embedder, self._vectors)
            counts = RetentionService(session, self._default_days).purge_org(
                data.org_id, data.now, memory
            )
        # Rows first, then vectors: a crash in between leaves vectors whose rows are gone,
        # which memory search skips.
        memory.apply_pending_vectors()
        return OrgPurged(data.org_id, counts.raw_payloads, counts.transcripts, counts.memories)

    @activity.defn(name=ACT_PURGE_UNOWNED)
    def purge_unowned(self, data: PurgeUnownedInput) -> PurgeUnownedResult:
        with session_scope(self._engine) as session:
            n = RetentionService(session, self._default_days).purge_unowned(data.now)
        return PurgeUnownedResult(n)

    def all(self) -> list[Callable[..., object]]:
        return [self.list_orgs, self.purge_org, self.purge_unowned]
