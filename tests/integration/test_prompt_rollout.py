"""PromptRolloutWorkflow on the real Temporal dev server and Postgres.

Call outcomes are injected as ``Call`` + ``CallScore`` rows whose ``prompt_version`` comes from
the same cache assignment the API serves with; the workflow's guard activity reads them. Holds
are seconds long (there is no time-skipping server here).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from activities.prompts import PromptActivities
from cli.worker import worker_for
from core.audit.models import AuditEvent
from core.monitoring.alerts import ROLLOUT_ROLLBACK, raise_alert
from core.monitoring.models import Alert
from core.prompts import repository as repo
from core.prompts.models import PromptExperiment, PromptRollout, PromptRolloutCheck
from orchestration.prompt_rollout import PromptRolloutWorkflow
from orchestration.prompt_rollout_types import (
    ACT_CHECK,
    GuardCheckInput,
    GuardCheckResult,
    RolloutInput,
    RolloutResult,
    RolloutSignal,
    RolloutStep,
)
from orchestration.starters import start_prompt_rollout
from tests.conftest import async_wait_for
from tests.prompt_helpers import Traffic, seed_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
Handle = WorkflowHandle[PromptRolloutWorkflow, RolloutResult]


@asynccontextmanager
async def running_worker(client: Client, engine: Engine, task_queue: str) -> AsyncIterator[None]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_for(client, task_queue, [PromptActivities(engine)], executor):
            yield


def _input(org_id: str, agent_id: str, steps: list[RolloutStep], interval: float) -> RolloutInput:
    return RolloutInput(
        org_id=org_id,
        agent_id=agent_id,
        candidate_version=2,
        steps=steps,
        check_interval_s=interval,
        actor="key:release",
        reason="ship the new greeting",
    )


def _production(engine: Engine, agent_id: str) -> int | None:
    with Session(engine) as session:
        label = repo.get_label(session, agent_id, "production")
        return label.version if label else None


def _rollout(engine: Engine, agent_id: str) -> PromptRollout | None:
    with Session(engine) as session:
        return repo.latest_rollout(session, agent_id)


async def test_degraded_candidate_rolls_back_by_itself_and_alerts(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [
        RolloutStep(0.2, 30, 20, 60),
        RolloutStep(0.5, 30, 20, 60),
        RolloutStep(1.0, 30, 20, 60),
    ]
    traffic = Traffic(pg_engine, org_id, agent_id, means={1: 80.0, 2: 55.0})
    async with running_worker(temporal_env.client, pg_engine, queue):
        handle = await start_prompt_rollout(
            temporal_env.client, data=_input(org_id, agent_id, steps, 0.2), task_queue=queue
        )
        traffic.start()
        try:
            result = await asyncio.wait_for(handle.result(), timeout=40)
        finally:
            await traffic.stop()

    assert result.outcome == "rolled_back"
    assert result.step_index == 0  # caught in the first step, long before its 30 s hold
    assert "quality score" in result.reason
    assert _production(pg_engine, agent_id) == 1
    with Session(pg_engine) as session:
        rollout = repo.latest_rollout(session, agent_id)
        assert rollout is not None and rollout.status == "rolled_back" and rollout.weight == 0
        exp = session.get(PromptExperiment, rollout.experiment_id)
        assert exp is not None and exp.status == "rolled_back"
        assert exp.variants[0] == {"version": 2, "weight": 0.0}
        alert = session.exec(select(Alert).where(Alert.agent_id == agent_id)).one()
        assert alert.kind == "prompt_rollout_rollback" and alert.severity == "critical"
        checks = repo.list_checks(session, rollout.id or 0)
        assert checks[-1].verdict == "breach"
        assert checks[-1].metrics["score"]["breached"] is True
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.org_id == org_id)).all()
        assert "prompt.rollout.rolled_back" in actions and "alert.raise" in actions


async def test_clean_candidate_is_promoted_after_every_step(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [
        RolloutStep(0.25, 0.5, 20, 30),
        RolloutStep(0.5, 0.5, 20, 30),
        RolloutStep(1.0, 0.5, 20, 30),
    ]
    traffic = Traffic(pg_engine, org_id, agent_id, means={1: 75.0, 2: 77.0})
    with Session(pg_engine) as session:  # an earlier rollout of this agent was rolled back
        earlier = raise_alert(
            session,
            org_id=org_id,
            agent_id=agent_id,
            kind=ROLLOUT_ROLLBACK,
            message="rollout of v9 rolled back: guard breached",
            subject="prompt_rollout:0",
        )
        session.commit()
        earlier_id = earlier.id
    async with running_worker(temporal_env.client, pg_engine, queue):
        handle = await start_prompt_rollout(
            temporal_env.client, data=_input(org_id, agent_id, steps, 0.2), task_queue=queue
        )
        with pytest.raises(WorkflowAlreadyStartedError):
            await start_prompt_rollout(
                temporal_env.client, data=_input(org_id, agent_id, steps, 0.2), task_queue=queue
            )
        traffic.start()
        try:
            result = await asyncio.wait_for(handle.result(), timeout=40)
        finally:
            await traffic.stop()
        status = await handle.query(PromptRolloutWorkflow.status)

    assert result.outcome == "promoted", result.reason
    assert _production(pg_engine, agent_id) == 2
    assert status.state == "promoted" and status.weights == [0.25, 0.5, 1.0]
    assert {h.step_index for h in status.history} == {0, 1, 2}
    # Every step ended on a look that tested the guards, the 100% step against the control
    # calls the earlier steps gathered.
    last_look = {h.step_index: h for h in status.history}
    assert all(h.verdict == "ok" and min(h.canary_n, h.control_n) >= 20 for h in last_look.values())
    assert traffic.served.get(2, 0) > 0 and traffic.served.get(1, 0) > 0
    with Session(pg_engine) as session:
        moves = repo.label_moves(session, agent_id, "production")
        assert (moves[0].kind, moves[0].from_version, moves[0].to_version) == ("promote", 1, 2)
        assert moves[0].actor.startswith("rollout:prompt-rollout-")
        steps_audited = session.exec(
            select(AuditEvent.detail)
            .where(AuditEvent.org_id == org_id, AuditEvent.action == "prompt.rollout.step")
            .order_by(col(AuditEvent.id))
        ).all()
        assert [d["weight"] for d in steps_audited] == [0.25, 0.5, 1.0]
        resolved = session.get(Alert, earlier_id)
        assert resolved is not None and resolved.state == "resolved"
        assert resolved.resolution is not None and "v2 was promoted" in resolved.resolution


async def test_worker_killed_mid_rollout_resumes_at_the_same_step(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [
        RolloutStep(0.25, 0.5, 5, 30),
        RolloutStep(0.5, 2.0, 5, 30),
        RolloutStep(1.0, 0.5, 5, 30),
    ]
    traffic = Traffic(pg_engine, org_id, agent_id, means={1: 75.0, 2: 77.0}).start()
    try:
        async with running_worker(temporal_env.client, pg_engine, queue):
            handle: Handle = await start_prompt_rollout(
                temporal_env.client, data=_input(org_id, agent_id, steps, 0.2), task_queue=queue
            )
            await async_wait_for(
                lambda: (r := _rollout(pg_engine, agent_id)) is not None and r.step_index == 1,
                timeout=30,
            )
        # The worker is gone mid-step; the rollout stays in the database at step 2 of 3.
        before = _rollout(pg_engine, agent_id)
        assert before is not None and before.status == "running" and before.step_index == 1

        async with running_worker(temporal_env.client, pg_engine, queue):
            resumed = await handle.query(PromptRolloutWorkflow.status)
            assert resumed.step_index == 1 and resumed.state in ("running", "promoted")
            result = await asyncio.wait_for(handle.result(), timeout=40)
    finally:
        await traffic.stop()

    assert result.outcome == "promoted"
    after = _rollout(pg_engine, agent_id)
    assert after is not None
    with Session(pg_engine) as session:
        weights = session.exec(
            select(AuditEvent.detail)
            .where(AuditEvent.org_id == org_id, AuditEvent.action == "prompt.rollout.step")
            .order_by(col(AuditEvent.id))
        ).all()
    # Each step began exactly once: the restart replayed the history instead of re-running it.
    assert [d["weight"] for d in weights] == [0.25, 0.5, 1.0]


async def test_abort_rolls_back_at_once(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [RolloutStep(0.5, 600, 10, 900), RolloutStep(1.0, 600, 10, 900)]
    traffic = Traffic(pg_engine, org_id, agent_id, means={1: 75.0, 2: 75.0}).start()
    try:
        async with running_worker(temporal_env.client, pg_engine, queue):
            handle = await start_prompt_rollout(
                temporal_env.client, data=_input(org_id, agent_id, steps, 5.0), task_queue=queue
            )
            await async_wait_for(lambda: traffic.served.get(2, 0) > 0, timeout=20)
            started = time.monotonic()
            await handle.signal(PromptRolloutWorkflow.abort, RolloutSignal("key:oncall", "pager"))
            result = await asyncio.wait_for(handle.result(), timeout=20)
            took = time.monotonic() - started
    finally:
        await traffic.stop()

    assert result.outcome == "aborted" and "key:oncall" in result.reason
    assert took < 3.0, f"abort took {took:.1f}s"  # not the 5 s check interval, not the hold
    assert _production(pg_engine, agent_id) == 1
    with Session(pg_engine) as session:
        exp = session.exec(
            select(PromptExperiment).where(PromptExperiment.agent_id == agent_id)
        ).one()
        assert exp.status == "aborted" and exp.variants[0]["weight"] == 0.0
        assert repo.running_experiment(session, agent_id) is None


async def test_a_step_starved_of_calls_pauses_and_alerts_instead_of_promoting(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [RolloutStep(0.5, 0.2, 50, 1.0), RolloutStep(1.0, 0.2, 50, 1.0)]
    async with running_worker(temporal_env.client, pg_engine, queue):
        handle = await start_prompt_rollout(
            temporal_env.client, data=_input(org_id, agent_id, steps, 0.2), task_queue=queue
        )
        paused = await async_wait_for(
            lambda: (r := _rollout(pg_engine, agent_id)) is not None and r.status == "paused",
            timeout=20,
        )
        assert paused
        status = await handle.query(PromptRolloutWorkflow.status)
        assert status.paused and status.step_index == 0
        assert "missing data never promotes" in status.reason
        with Session(pg_engine) as session:
            alert = session.exec(select(Alert).where(Alert.agent_id == agent_id)).one()
            assert alert.kind == "prompt_rollout_paused"
            looks = session.exec(
                select(PromptRolloutCheck)
                .join(PromptRollout, col(PromptRollout.id) == col(PromptRolloutCheck.rollout_id))
                .where(PromptRollout.agent_id == agent_id)
            ).all()
            assert looks and all(c.verdict == "insufficient" for c in looks)

        await handle.signal(PromptRolloutWorkflow.resume, RolloutSignal("key:release", "wait"))
        await async_wait_for(
            lambda: (r := _rollout(pg_engine, agent_id)) is not None and r.status == "running",
            timeout=10,
        )
        await handle.signal(PromptRolloutWorkflow.abort, RolloutSignal("key:release", "no traffic"))
        result = await asyncio.wait_for(handle.result(), timeout=20)
    assert result.outcome == "aborted"
    assert _production(pg_engine, agent_id) == 1


async def test_a_failing_guard_activity_takes_the_canary_out_instead_of_leaving_it_unguarded(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    real = PromptActivities(pg_engine)

    # A stand-in registered under the real activity's name, as Temporal's testing guide does.
    @activity.defn(name=ACT_CHECK)
    def broken_check(data: GuardCheckInput) -> GuardCheckResult:
        raise ApplicationError("metrics store is gone", type="NotFound", non_retryable=True)

    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_for(
            temporal_env.client, queue, [real], executor, stand_ins=[broken_check]
        ):
            handle = await start_prompt_rollout(
                temporal_env.client,
                data=_input(org_id, agent_id, [RolloutStep(0.5, 5, 5, 60)], 0.2),
                task_queue=queue,
            )
            result = await asyncio.wait_for(handle.result(), timeout=20)

    assert result.outcome == "rolled_back" and "metrics store is gone" in result.reason
    assert _production(pg_engine, agent_id) == 1
    with Session(pg_engine) as session:
        assert repo.running_experiment(session, agent_id) is None
        alert = session.exec(select(Alert).where(Alert.agent_id == agent_id)).one()
        assert alert.kind == "prompt_rollout_rollback"


def _looks(engine: Engine, agent_id: str) -> list[PromptRolloutCheck]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(PromptRolloutCheck)
                .join(PromptRollout, col(PromptRollout.id) == col(PromptRolloutCheck.rollout_id))
                .where(PromptRollout.agent_id == agent_id)
                .order_by(col(PromptRolloutCheck.id))
            ).all()
        )


async def test_a_worse_candidate_is_never_promoted_on_looks_that_tested_nothing(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    """The reported plan, 0.2:H:3:120 -> 0.5:H:3:120 -> 1.0:H:3:120, with calls trickling in:
    each step's hold and 3 canary calls come long before either arm has the guards' 20 calls,
    and the 100% step adds none to control. Such a step used to pass on ``insufficient``
    looks and the candidate (quality 33 vs 100, a transfer on every call) was promoted."""
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [RolloutStep(w, 2.0, 3, 120) for w in (0.2, 0.5, 1.0)]
    traffic = Traffic(
        pg_engine,
        org_id,
        agent_id,
        means={1: 100.0, 2: 33.0},
        sd=3.0,
        per_tick=1,
        tick_s=0.5,
        transfers=frozenset({2}),
    )
    async with running_worker(temporal_env.client, pg_engine, queue):
        handle = await start_prompt_rollout(
            temporal_env.client, data=_input(org_id, agent_id, steps, 0.5), task_queue=queue
        )
        traffic.start()
        try:
            # ~2 calls/s: by 40 calls every hold and every 3-call minimum of the plan has been
            # met (the old rule promoted after ~25), while no look has tested anything.
            await async_wait_for(lambda: sum(traffic.served.values()) >= 40, timeout=60)
            status = await handle.query(PromptRolloutWorkflow.status)
            looks = _looks(pg_engine, agent_id)
            assert status.state == "running" and status.step_index == 0, status.reason
            assert looks and {c.verdict for c in looks} == {"insufficient"}
            assert _production(pg_engine, agent_id) == 1
            # Calls arrive faster: the first look that can test, breaches.
            traffic.per_tick, traffic.tick_s = 20, 0.05
            result = await asyncio.wait_for(handle.result(), timeout=30)
        finally:
            await traffic.stop()

    assert result.outcome == "rolled_back", result.reason
    assert result.step_index == 0
    assert _production(pg_engine, agent_id) == 1
    assert _looks(pg_engine, agent_id)[-1].verdict == "breach"


async def test_a_step_without_control_calls_waits_for_them_before_passing(
    temporal_env: WorkflowEnvironment, pg_engine: Engine
) -> None:
    """At 90% a step's 20 canary calls arrive with ~2 control calls; the 100% step adds none.
    The first step must wait until control has its 20 calls too, which here means a breach."""
    org_id, agent_id = seed_tenant(pg_engine)
    queue = f"rollout-{uuid.uuid4().hex[:8]}"
    steps = [RolloutStep(0.9, 0.2, 20, 60), RolloutStep(1.0, 0.2, 20, 60)]
    traffic = Traffic(
        pg_engine,
        org_id,
        agent_id,
        means={1: 100.0, 2: 33.0},
        sd=3.0,
        per_tick=2,
        transfers=frozenset({2}),
    )
    async with running_worker(temporal_env.client, pg_engine, queue):
        handle = await start_prompt_rollout(
            temporal_env.client, data=_input(org_id, agent_id, steps, 0.2), task_queue=queue
        )
        traffic.start()
        try:
            result = await asyncio.wait_for(handle.result(), timeout=40)
        finally:
            await traffic.stop()

    assert result.outcome == "rolled_back", result.reason
    assert result.step_index == 0
    assert _production(pg_engine, agent_id) == 1
