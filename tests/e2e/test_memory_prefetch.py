"""Over HTTP: a context request loads the caller's memory into the API process, the call's
``memory_search`` then scores it in process, and a memory written meanwhile by another process
is in the next answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from connectors.embedder import MiniLMEmbedder
from connectors.vectors.embedded import EmbeddedVectorStore
from core.db import utcnow
from core.memory.models import CallerProfile
from core.memory.service import CallMemoryInput, MemoryService
from core.pii.phone import caller_hash
from tests.conftest import SECRET_KEY, Stack
from tests.helpers import assistant_request, create_tenant, raw, tool_call

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
NUMBER = "+14155550188"


def _remember(
    stack: Stack, embedder: MiniLMEmbedder, tenant_org: str, agent: str, n: int, text: str
) -> None:
    """A call's memory as the post-call worker writes it (another process's service)."""
    with Session(stack.engine) as s:
        memory = MemoryService(s, embedder, EmbeddedVectorStore(stack.engine))
        memory.write_call_memories(
            CallMemoryInput(
                org_id=tenant_org,
                agent_id=agent,
                caller_hash=caller_hash(SECRET_KEY, NUMBER),
                caller_display=None,
                platform="vapi",
                call_id=f"earlier-{n}",
                revision=1,
                ended_at=utcnow() - timedelta(days=10 - n),
                summary=text,
                facts=[],
                method="extractive",
            )
        )
        s.commit()
        memory.apply_pending_vectors()
        # Written a while ago: its vectors are settled, so the API may hold the snapshot.
        backdate = (
            update(CallerProfile)
            .where(CallerProfile.agent_id == agent)  # type: ignore[arg-type]
            .values(updated_at=utcnow() - timedelta(minutes=5))
        )
        s.execute(backdate)
        s.commit()


async def test_a_call_searches_its_prefetched_memory_and_sees_new_memories(
    stack: Stack, embedder: MiniLMEmbedder
) -> None:
    recall = stack.api._app_state().answering.memory.recall
    with stack.http() as http:
        tenant = create_tenant(http)
        org, agent = tenant.org_id, tenant.agent_id
        _remember(stack, embedder, org, agent, 1, "The water heater leaked; a valve was replaced.")
        _remember(stack, embedder, org, agent, 2, "Asked for a refund of the deposit on order 77.")
        call_id = f"call-{uuid.uuid4().hex[:8]}"
        r = http.post(
            tenant.webhook,
            content=raw(assistant_request(NUMBER, call_id)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200 and "yes" in r.text  # a known caller
        deadline = time.monotonic() + 10
        while len(recall) == 0 and time.monotonic() < deadline:  # the prefetch runs after the reply
            await asyncio.sleep(0.05)
        assert len(recall) >= 1
        hits = recall.hits
        r = http.post(
            tenant.webhook,
            content=raw(tool_call(NUMBER, "memory_search", {"query": "water heater"}, call_id)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200 and "valve was replaced" in r.text
        assert recall.hits == hits + 1  # scored in process

        _remember(stack, embedder, org, agent, 3, "Reported a gas smell near the stove.")
        r = http.post(
            tenant.webhook,
            content=raw(tool_call(NUMBER, "memory_search", {"query": "gas smell"}, call_id)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200 and "gas smell near the stove" in r.text
