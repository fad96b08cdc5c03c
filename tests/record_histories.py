"""Re-record the workflow histories that tests/integration/test_workflow_replay.py replays.

Run by hand, from the repository root, after a deliberate change to what a workflow commands
(made safe for histories in flight with ``workflow.patched`` or a new workflow type)::

    PYTHONPATH=. python -m tests.record_histories

It runs the integration tests that drive every workflow on the Temporal dev server, with the
``--record-histories`` option: when that session ends, the ``temporal_env`` fixture keeps, for
each workflow type, the completed execution with the most events and writes its history to
``tests/fixtures/histories/<WorkflowType>.json``. Payloads stay encrypted, as the tests' client
sealed them (the codec key derived from ``tests.conftest.SECRET_KEY``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory

HISTORIES = Path(__file__).parent / "fixtures" / "histories"
# Between them, these run every workflow the worker serves to completion.
RECORDING_TESTS = [
    "tests/integration/test_prompt_rollout.py",
    "tests/integration/test_knowledge_workflows.py",
    "tests/integration/test_retention_workflow.py",
    "tests/integration/test_calls_abandon.py",
    "tests/e2e/test_alert_delivery.py",
    "tests/integration/test_eval_workflow.py",
    "tests/e2e/test_drift_watch_e2e.py",
    "tests/e2e/test_replay_and_durability.py::"
    "test_corrected_redelivery_runs_as_revision_and_replaces_memories",
]


def history_fixture(workflow_id: str, history: WorkflowHistory) -> str:
    return json.dumps(
        {"workflow_id": workflow_id, "history": json.loads(history.to_json())}, indent=1
    )


def load_history(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data["workflow_id"], data["history"])


async def record_histories(client: Client, out_dir: Path, workflow_types: set[str]) -> None:
    """Write one completed history per workflow type in ``workflow_types``."""
    best: dict[str, WorkflowHistory] = {}
    async for execution in client.list_workflows():
        kind = execution.workflow_type
        if kind not in workflow_types or execution.status != WorkflowExecutionStatus.COMPLETED:
            continue
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        if kind not in best or len(history.events) > len(best[kind].events):
            best[kind] = history
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind, history in sorted(best.items()):
        (out_dir / f"{kind}.json").write_text(history_fixture(history.workflow_id, history) + "\n")
    missing = workflow_types - best.keys()
    if missing:
        print(f"no completed execution of {sorted(missing)}: fixtures not written", file=sys.stderr)


def main() -> int:
    return int(pytest.main([*RECORDING_TESTS, "-q", "--record-histories", str(HISTORIES)]))


if __name__ == "__main__":
    raise SystemExit(main())
