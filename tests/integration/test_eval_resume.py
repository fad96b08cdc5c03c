"""EvalSuiteWorkflow resumes after its worker dies: a run is started on the Temporal dev server
with its worker in a separate process (tests/eval_resume_worker.py: the eval activities over
Postgres, the agent runtime a scripted stand-in), the worker is SIGKILLed while cases are in
flight, a new worker process starts, and the run finishes with every case's result recorded
exactly once: one stored row and one completed case activity per case, none missing, none
twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.testing import WorkflowEnvironment

from core.evals import repository as repo
from orchestration.eval_types import (
    ACT_EVAL_RUN_CASE,
    CaseOutcome,
    EvalRunResult,
    EvalSuiteInput,
    eval_workflow_id,
)
from orchestration.evals import EvalSuiteWorkflow
from tests.conftest import SECRET_KEY
from tests.integration.test_eval_workflow import create_run

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

ROOT = Path(__file__).resolve().parents[2]


def start_worker(address: str, database: str, queue: str, ready: Path) -> subprocess.Popen[bytes]:
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.eval_resume_worker",
            "--address",
            address,
            "--database",
            database,
            "--queue",
            queue,
            "--ready",
            str(ready),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BACKLINE_SECRET_KEY": SECRET_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, "the worker process exited before it polled"
        assert time.monotonic() < deadline, "the worker process did not start polling in 60 s"
        time.sleep(0.05)
    return proc


async def test_a_run_resumes_after_its_worker_is_killed_and_records_every_case_once(
    temporal_env: WorkflowEnvironment, pg_engine: Engine, tmp_path: Path
) -> None:
    run_id = create_run(pg_engine, "name: s\nrepeats: 5\nconcurrency: 2\n")  # 10 cases
    address = temporal_env.client.service_client.config.target_host
    database = pg_engine.url.render_as_string(hide_password=False)
    queue = f"evals-resume-{uuid.uuid4().hex[:8]}"
    ready = tmp_path / "ready"
    first = start_worker(address, database, queue, ready)
    second = None
    try:
        handle = await temporal_env.client.start_workflow(
            EvalSuiteWorkflow.run,
            EvalSuiteInput(run_id),
            id=eval_workflow_id(run_id),
            task_queue=queue,
        )
        # Kill once some cases are stored and others are running on the worker.
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "no case finished on the first worker"
            with Session(pg_engine) as session:
                stored = len(repo.case_results(session, run_id))
            running = [
                a
                for a in (await handle.describe()).raw_description.pending_activities
                if a.activity_type.name == ACT_EVAL_RUN_CASE
                and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            ]
            if stored >= 2 and running:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        with Session(pg_engine) as session:
            stored_at_kill = len(repo.case_results(session, run_id))
        assert stored_at_kill < 10, "the run finished before the worker was killed"

        second = start_worker(address, database, queue, ready)
        result: EvalRunResult = await handle.result()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    assert (result.status, result.done, result.total) == ("inconclusive", 10, 10)
    with Session(pg_engine) as session:
        run = repo.get_run(session, run_id)
        rows = repo.case_results(session, run_id)
    assert run is not None and (run.done, run.passed, run.failed, run.skipped) == (10, 10, 0, 0)
    assert sorted(r.case_index for r in rows) == list(range(10))
    assert all(r.status == "passed" and r.transcript for r in rows)

    # The history: each case's activity completed exactly once (a case cut off by the kill was
    # retried, but only one attempt completed), and one was in flight when the worker died.
    converter = temporal_env.client.data_converter
    completed: Counter[int] = Counter()
    case_activities: set[int] = set()  # scheduled-event ids of the case activities
    timed_out = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == ACT_EVAL_RUN_CASE:
                case_activities.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in case_activities:
                [outcome] = await converter.decode(done.result.payloads, [CaseOutcome])
                completed[outcome.index] += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            timed_out += 1
    assert completed == Counter(range(10))
    assert timed_out == 0  # retried within the case activity's attempts, not timed out for good
