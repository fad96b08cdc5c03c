"""Helpers for the prompt tests: a tenant with versions, principals, and call outcomes written
the way the post-call path writes them (a ``Call`` with ``prompt_version`` and its
``CallScore``), including a traffic generator that assigns callers through the real cache."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.calls.models import Call
from core.monitoring.models import CallScore
from core.prompts.cache import PromptCache
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.schemas import PromptVersionCreate
from core.prompts.service import PromptService
from core.tenancy.models import Agent, Organization
from core.tenancy.service import Principal

MODEL = {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2}
PARTS = {"completion": 1.0, "escalation": 1.0, "talk_ratio": 1.0, "frustration": 1.0}


def principal(org_id: str, *scopes: str) -> Principal:
    return Principal(actor=f"key:{'-'.join(scopes)}", org_id=org_id, scopes=frozenset(scopes))


def version_body(n: int, **overrides: object) -> PromptVersionCreate:
    data: dict[str, object] = {
        "template": f"You are Acme's agent (prompt {n}). "
        "Caller known: {{backline.caller_known}}. Memory: {{backline_memory_summary}}. "
        "Ask for {{customer.name}}.",
        "model": MODEL,
        "first_message": f"Hi from version {n}",
        "message": f"version {n}",
    }
    data.update(overrides)
    return PromptVersionCreate.model_validate(data)


def seed_tenant(engine: Engine, versions: int = 2, production: int | None = 1) -> tuple[str, str]:
    """An org and agent with ``versions`` prompt versions, ``production`` labelled."""
    suffix = uuid.uuid4().hex[:8]
    org_id, agent_id = f"org-{suffix}", f"agent-{suffix}"
    with Session(engine, expire_on_commit=False) as session:
        session.add(Organization(id=org_id, name="Prompt org"))
        session.flush()
        agent = Agent(id=agent_id, org_id=org_id, name="Prompt agent")
        session.add(agent)
        session.flush()
        svc = PromptService(session, NoEvalSuiteGate())
        release = principal(org_id, "release")
        for n in range(1, versions + 1):
            svc.push_version(agent, version_body(n), release)
        if production is not None:
            svc.move_label(agent, "production", production, "first release", release)
        session.commit()
    return org_id, agent_id


def add_call(
    session: Session,
    org_id: str,
    agent_id: str,
    version: int,
    score: float,
    *,
    transferred: bool = False,
    latency_ms: float = 700.0,
) -> None:
    call_id = f"call-{uuid.uuid4().hex[:12]}"
    scope = {"org_id": org_id, "agent_id": agent_id, "platform": "vapi"}
    session.add(
        Call(
            **scope,
            platform_call_id=call_id,
            status="processed",
            revision=1,
            prompt_version=f"v{version}",
            analysis={"transferred": transferred, "turn_latency_ms": latency_ms},
        )
    )
    session.add(
        CallScore(
            **scope,
            platform_call_id=call_id,
            score=score,
            parts={**PARTS, "score": score},
        )
    )


@dataclass
class Traffic:
    """Calls arriving at ``per_tick`` every ``tick_s`` (both may change while it runs): each
    caller is assigned by the same cache code the API serves from, and scores ~N(mean of the
    served version, sd)."""

    engine: Engine
    org_id: str
    agent_id: str
    means: dict[int, float]
    sd: float = 10.0
    per_tick: int = 20
    tick_s: float = 0.05
    seed: int = 7
    transfers: frozenset[int] = frozenset()  # versions whose every call ends in a transfer
    served: dict[int, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def _tick(self, cache: PromptCache, rng: random.Random) -> None:
        with Session(self.engine) as session:
            cache.refresh(session)
            for _ in range(self.per_tick):
                resolved = cache.resolve(self.agent_id, uuid.uuid4().hex)
                if resolved is None:
                    continue
                v = resolved.version.version
                self.served[v] = self.served.get(v, 0) + 1
                score = min(100.0, max(0.0, rng.gauss(self.means.get(v, 75.0), self.sd)))
                add_call(
                    session, self.org_id, self.agent_id, v, score, transferred=v in self.transfers
                )
            session.commit()

    async def _run(self) -> None:
        cache, rng = PromptCache(), random.Random(self.seed)
        while True:
            await asyncio.to_thread(self._tick, cache, rng)
            await asyncio.sleep(self.tick_s)

    def start(self) -> Traffic:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
