"""Every committed workflow history replays on today's workflow code: a change to what a
workflow commands, or in what order, that would break executions in flight fails here.

The histories (tests/fixtures/histories/, one per workflow; re-record them with
``python -m tests.record_histories``) were recorded through the production data converter,
AES-GCM codec included, keyed by the codec key the tests derive from ``SECRET_KEY``; the replay
uses that converter too. So the replay decodes every payload as the worker does and the codec
stays under test; the price is that the fixtures' payloads are ciphertext, readable only with
that test key, which is what production histories look like anyway.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker import Replayer

from cli.worker import WORKFLOWS
from tests.conftest import temporal_test_converter
from tests.record_histories import HISTORIES, load_history

pytestmark = [pytest.mark.temporal]
FIXTURES = sorted(HISTORIES.glob("*.json"))


def test_every_workflow_the_worker_serves_has_a_recorded_history() -> None:
    served = {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}
    assert {p.stem for p in FIXTURES} == served


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
async def test_the_recorded_history_replays_on_the_current_workflow_code(path: Path) -> None:
    history = load_history(path)
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=temporal_test_converter())
    # Raises on non-determinism (or any other workflow task failure) during the replay.
    await replayer.replay_workflow(history)
