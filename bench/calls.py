"""Post-call benchmark helpers: VAPI end-of-call reports and database probes for completion."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from bench import corpus


@dataclass
class CallSpec:
    index: int
    call_id: str
    number: str
    caller_hash: str
    partition: str
    body: bytes
    workflow_id: str = ""
    send_wall: float = 0.0  # time.time() at the scheduled send
    send_mono: float = 0.0  # loop.time() at the scheduled send
    http_s: float | None = None
    http_ok: bool = False
    ready_mono: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_calls(
    n: int, tenant: Any, secret_key: str, seed: int = 11, prefix: str = "pc"
) -> list[CallSpec]:
    """``n`` end-of-call reports from distinct callers, each a varied transcript."""
    from core.memory.service import partition_key
    from core.pii.phone import caller_hash
    from fakes.common import raw
    from fakes.vapi import end_of_call

    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    out = []
    for i in range(n):
        number = f"+1628{3000000 + i:07d}"
        call_id = f"bench-{prefix}-{run}-{i}"
        ended = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        body = raw(
            end_of_call(call_id, number, corpus.call_turns(rng, rng.choice(corpus.NAMES)), ended)
        )
        ch = caller_hash(secret_key, number)
        out.append(
            CallSpec(
                i, call_id, number, ch, partition_key(tenant.org_id, tenant.agent_id, ch), body
            )
        )
    return out


def retrievable(engine: Any, agent_id: str, calls: Iterable[CallSpec]) -> set[str]:
    """Caller hashes whose memory the next call would see: the caller profile (what
    assistant-request reads) is committed and the summary vector (what memory_search reads)
    exists."""
    calls = list(calls)
    if not calls:
        return set()
    hashes = [c.caller_hash for c in calls]
    parts = [c.partition for c in calls]
    with engine.connect() as conn:
        have_profile = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT caller_hash FROM callerprofile WHERE agent_id = :a "
                    "AND caller_hash IN :h"
                ).bindparams(_expanding("h")),
                {"a": agent_id, "h": hashes},
            )
        }
        have_vector = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT DISTINCT partition FROM vectorentry WHERE namespace = 'memory' "
                    "AND partition IN :p AND item_id LIKE 'summary:%'"
                ).bindparams(_expanding("p")),
                {"p": parts},
            )
        }
    return {
        c.caller_hash for c in calls if c.caller_hash in have_profile and c.partition in have_vector
    }


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def progress_counts(engine: Any, org_id: str, agent_id: str) -> tuple[int, int]:
    """(workflows that reached their last step, memory rows) for one tenant."""
    with engine.connect() as conn:
        done = conn.execute(
            text("SELECT count(*) FROM auditevent WHERE org_id = :o AND action = 'call.processed'"),
            {"o": org_id},
        ).scalar_one()
        memories = conn.execute(
            text("SELECT count(*) FROM memory WHERE agent_id = :a"), {"a": agent_id}
        ).scalar_one()
    return int(done), int(memories)


async def count_workflows(client: Any, task_queue: str) -> dict[str, int]:
    """Workflow executions on our task queue by status (Temporal visibility)."""
    out = {}
    for status in ("Running", "Completed", "Failed", "TimedOut", "Terminated"):
        resp = await client.count_workflows(
            f"TaskQueue = '{task_queue}' AND ExecutionStatus = '{status}'"
        )
        out[status] = resp.count
    return out


async def unexpected_workflows(
    client: Any, task_queue: str, known_ids: Iterable[str]
) -> list[dict[str, str]]:
    """Workflow executions on our task queue that no webhook reply announced (should be none)."""
    known = set(known_ids)
    out = []
    async for wf in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        if wf.id not in known:
            out.append(
                {"id": wf.id, "run_id": wf.run_id, "type": wf.workflow_type,
                 "status": str(wf.status.name if wf.status else None),
                 "start": str(wf.start_time)}
            )  # fmt: skip
    return out
