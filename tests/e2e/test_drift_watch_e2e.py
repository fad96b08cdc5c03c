"""Drift watch end to end: an agent answers longer and less grounded, and an alert naming the
metric, the prompt version and the calls reaches the organization's webhook.

What is real: the API (prompt served by the VAPI assistant-request, end-of-call webhooks, the
drift-watch schedule created by the API's tick, the drift routes, the alert rules and
channels, the outbox dispatch), the post-call workflow scoring the webhook calls, the
``DriftWatchWorkflow`` started by the agent's Temporal Schedule and directly, its
``drift.watch_agent`` activity, the detectors, the alerts and their delivery by
``AlertDeliveryWorkflow`` to a local receiver (``BACKLINE_EGRESS_ALLOW`` admits loopback).

What is a shortcut: the detectors need a 200-call reference and then tens to hundreds of
shifted calls, too many for webhooks and post-call workflows within the test's time. So
besides the calls sent through the webhook (reference and shifted ones), the bulk is written
with the same code the post-call scoring activity runs: the same VAPI end-of-call payloads
parsed by the VAPI connector, stored by ``CallsService.store_ended_call`` (the call started
under prompt version v1, as ``touch_call`` records it) and scored by
``MonitoringService.score_and_store``.

The agent's reference: agent turns of about 20 words, a stated fee grounded in the prompt in
90% of calls. Then it answers 30% longer and states the right fee in 80% of calls.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.alerts import AlertActivities
from activities.drift import DriftActivities
from cli.main import app as cli_app
from cli.worker import worker_for
from connectors.embedder import MiniLMEmbedder
from connectors.registry import parse_call_ended
from core.calls.service import CallsService
from core.db import session_scope
from core.egress import egress_policy
from core.monitoring.models import Alert, CallScore, DriftState
from core.monitoring.service import MonitoringService
from orchestration.drift_watch_starters import start_drift_watch
from orchestration.drift_watch_types import drift_watch_schedule_id
from tests.conftest import (
    LOOPBACK_ALLOWED,
    SECRET_KEY,
    ApiServer,
    async_wait_for,
    build_activities,
    make_settings,
    temporal_address,
)
from tests.e2e.test_alert_delivery import Receiver, receiver  # noqa: F401  (the fixture)
from tests.helpers import ADMIN, Tenant, assistant_request, create_tenant, end_of_call, raw

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

FEE = 89
PROMPT = (
    "You are Acme Plumbing's phone agent. The service call fee is 89 dollars. "
    "Known caller: {{backline.caller_known}}. Keep answers short."
)
MODEL = {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2}
FILLER = [
    "sure",
    "thing",
    "happy",
    "to",
    "help",
    "you",
    "with",
    "that",
    "today",
    "let",
    "me",
    "just",
    "check",
    "the",
    "details",
    "on",
    "my",
    "side",
    "so",
    "that",
    "everything",
    "is",
    "right",
    "for",
    "your",
    "visit",
    "and",
    "nothing",
    "gets",
    "missed",
    "along",
    "the",
    "way",
]
REFERENCE_WORDS, SHIFTED_WORDS = 20, 26  # +30%
REFERENCE_GROUNDED, SHIFTED_GROUNDED = 0.9, 0.8
REAL_REFERENCE, BULK_REFERENCE = 8, 232
REAL_SHIFTED, BULK_SHIFTED = 4, 296


@dataclass
class DriftStack:
    api: ApiServer
    engine: Engine
    env: WorkflowEnvironment
    task_queue: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=30)


@pytest_asyncio.fixture(loop_scope="session")
async def drift_stack(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> AsyncIterator[DriftStack]:
    settings = make_settings(
        pg_url,
        tmp_path,
        temporal_address=temporal_address(temporal_env),
        egress_allow=LOOPBACK_ALLOWED,
    )
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    acts = [
        build_activities(settings, pg_engine, embedder, analyzer=None),
        DriftActivities(pg_engine),
        AlertActivities(pg_engine, settings.secret_key.get_secret_value(), egress_policy(settings)),
    ]
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with worker_for(temporal_env.client, settings.task_queue, acts, executor):
            yield DriftStack(api, pg_engine, temporal_env, settings.task_queue)
            await asyncio.to_thread(api.stop)


def _turns(rng: random.Random, words: float, grounded: bool) -> list[tuple[str, str]]:
    def say(n: int, tail: str = "") -> str:
        body = [FILLER[(i + rng.randrange(len(FILLER))) % len(FILLER)] for i in range(n)]
        return " ".join(body) + (f". {tail}" if tail else ".")

    fee = FEE if grounded else rng.choice((95, 99, 120))
    tail = f"the service call fee is {fee} dollars."
    sizes = [max(4, round(rng.gauss(words, 0.25 * words))) for _ in range(3)]
    return [
        ("agent", say(sizes[0])),
        ("caller", "hi, how much does a plumber visit cost?"),
        ("agent", say(sizes[1] - len(tail.split()), tail)),
        ("caller", "okay, thanks a lot, bye."),
        ("agent", say(sizes[2])),
    ]


def _number(i: int) -> str:
    return f"+1415{(uuid.uuid4().int + i) % 10_000_000:07d}"


async def _webhook_calls(
    http: httpx.Client, tenant: Tenant, n: int, rng: random.Random, words: float, rate: float
) -> list[str]:
    """Calls the way VAPI makes them: an assistant request (served prompt v1), then the
    end-of-call report; the post-call workflow scores them."""
    ids = []
    for i in range(n):
        call_id, number = f"call-{uuid.uuid4().hex[:12]}", _number(i)
        r = http.post(
            tenant.webhook,
            content=raw(assistant_request(number, call_id)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code == 200, r.text
        turns = _turns(rng, words, rng.random() < rate)
        r = http.post(
            tenant.webhook,
            content=raw(end_of_call(call_id, number, turns)),
            headers=tenant.vapi_headers,
        )
        assert r.status_code in (200, 202), r.text
        ids.append(call_id)
    return ids


def _bulk_calls(
    engine: Engine, tenant: Tenant, n: int, rng: random.Random, words: float, rate: float
) -> list[str]:
    """The shortcut: the same payloads through the same parse, store and scoring code as the
    post-call activities, without the HTTP and workflow hops."""
    ids = []
    for i in range(n):
        call_id, number = f"call-{uuid.uuid4().hex[:12]}", _number(i)
        body = end_of_call(call_id, number, _turns(rng, words, rng.random() < rate))
        ended = parse_call_ended("vapi", raw(body))
        with session_scope(engine) as s:
            calls = CallsService(s, SECRET_KEY)
            calls.touch_call(
                org_id=tenant.org_id,
                agent_id=tenant.agent_id,
                platform="vapi",
                call_id=call_id,
                caller_number=number,
                prompt_version="v1",
            )
            s.flush()
            call = calls.store_ended_call(
                org_id=tenant.org_id, agent_id=tenant.agent_id, ended=ended, revision=1
            )
            assert call is not None
            MonitoringService(s).score_and_store(call, ended)
        ids.append(call_id)
    return ids


def _scores(engine: Engine, agent_id: str) -> list[CallScore]:
    with Session(engine) as s:
        q = select(CallScore).where(CallScore.agent_id == agent_id).order_by(col(CallScore.id))
        return list(s.exec(q))


def _calls_seen(engine: Engine, agent_id: str) -> int:
    with Session(engine) as s:
        rows = s.exec(select(DriftState).where(DriftState.agent_id == agent_id)).all()
        return sum(r.calls_seen for r in rows)


def _key(http: httpx.Client, org_id: str, scope: str) -> dict[str, str]:
    r = http.post(f"/v1/orgs/{org_id}/keys", json={"name": scope, "scopes": [scope]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def test_longer_less_grounded_answers_raise_a_drift_alert_that_reaches_the_webhook(
    drift_stack: DriftStack,
    receiver: Receiver,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    rng = random.Random(20261207)
    http = drift_stack.http()
    tenant = create_tenant(http)
    org, agent = tenant.org_id, tenant.agent_id
    admin, viewer = _key(http, org, "admin"), _key(http, org, "viewer")
    release = _key(http, org, "release")

    # The agent's prompt (the evidence the stated fee is grounded in), live as production.
    base = f"/v1/agents/{agent}/prompts"
    r = http.post(
        f"{base}/versions",
        json={
            "template": PROMPT,
            "model": MODEL,
            "first_message": "Acme Plumbing, hi!",
            "message": "live prompt",
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    r = http.put(f"{base}/labels/production", json={"version": 1, "reason": "live"}, headers=ADMIN)
    assert r.status_code == 200, r.text

    def served() -> bool:
        r = http.post(
            tenant.webhook, content=raw(assistant_request(_number(0))), headers=tenant.vapi_headers
        )
        return bool(r.json()["assistantOverrides"]["variableValues"].get("backline_prompt_version"))

    await async_wait_for(served, timeout=15)

    # Drift alerts notify the ops webhook (a trend rule matches drift_*).
    r = http.post(
        "/v1/alert-channels",
        json={"name": "ops", "kind": "webhook", "url": receiver.url("/drift")},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = http.post(
        f"/v1/agents/{agent}/alert-rules", json={"name": "drift", "kind": "trend"}, headers=release
    )
    assert r.status_code == 201, r.text

    # -- the reference stream -------------------------------------------------------------------
    real_ref = await _webhook_calls(
        http, tenant, REAL_REFERENCE, rng, REFERENCE_WORDS, REFERENCE_GROUNDED
    )
    await async_wait_for(lambda: len(_scores(drift_stack.engine, agent)) >= REAL_REFERENCE, 60)
    scored = {c.platform_call_id: c for c in _scores(drift_stack.engine, agent)}
    assert set(real_ref) <= set(scored)
    for call_id in real_ref:
        row = scored[call_id]
        assert row.prompt_version == "v1"
        assert 10 < row.metrics["words_per_agent_turn"] < 30
        assert row.metrics["all_grounded"] in (True, False)
    assert any(scored[c].metrics["all_grounded"] for c in real_ref)
    await asyncio.to_thread(
        _bulk_calls,
        drift_stack.engine,
        tenant,
        BULK_REFERENCE,
        rng,
        REFERENCE_WORDS,
        REFERENCE_GROUNDED,
    )

    # The API's tick gave the agent its drift-watch schedule; a run of it feeds the reference.
    client = drift_stack.env.client
    schedule = client.get_schedule_handle(drift_watch_schedule_id(agent))

    deadline = time.monotonic() + 30
    while True:  # the tick runs every 15 s
        try:
            described = await schedule.describe()
            break
        except RPCError:
            assert time.monotonic() < deadline, "no drift-watch schedule for the agent"
            await asyncio.sleep(0.5)
    assert described.schedule.spec.intervals[0].every.total_seconds() == 300
    await schedule.trigger()
    reference = REAL_REFERENCE + BULK_REFERENCE
    await async_wait_for(lambda: _calls_seen(drift_stack.engine, agent) >= reference, timeout=60)
    with Session(drift_stack.engine) as s:
        assert s.exec(select(Alert).where(Alert.agent_id == agent)).all() == []
    view = http.get(f"/v1/agents/{agent}/drift", headers=viewer).json()
    (v1,) = view["versions"]
    words = next(m for m in v1["metrics"] if m["metric"] == "words_per_agent_turn")
    assert v1["prompt_version"] == "v1" and words["phase"] == "watching"
    assert 18 < words["baseline"] < 22

    # -- the drift: 30% longer answers, the fee right in 80% of calls ----------------------------
    shifted = await asyncio.to_thread(
        _bulk_calls, drift_stack.engine, tenant, BULK_SHIFTED, rng, SHIFTED_WORDS, SHIFTED_GROUNDED
    )
    shifted += await _webhook_calls(
        http, tenant, REAL_SHIFTED, rng, SHIFTED_WORDS, SHIFTED_GROUNDED
    )
    total = reference + BULK_SHIFTED + REAL_SHIFTED
    await async_wait_for(lambda: len(_scores(drift_stack.engine, agent)) >= total, 60)
    handle = await start_drift_watch(client, agent_id=agent, task_queue=drift_stack.task_queue)
    result = await handle.result()
    assert result.calls == BULK_SHIFTED + REAL_SHIFTED
    kinds = {s.split(":")[-1] for s in result.alarms}
    assert "words_per_agent_turn" in kinds, result

    with Session(drift_stack.engine) as s:
        alerts = list(s.exec(select(Alert).where(Alert.agent_id == agent)))
    by_kind = {a.kind: a for a in alerts}
    alert = by_kind["drift_words_per_agent_turn"]
    assert alert.subject == f"drift:{agent}:v1:words_per_agent_turn"
    assert "words_per_agent_turn" in alert.message and "v1" in alert.message
    assert "rose" in alert.message
    d = alert.detail
    assert 0 < len(d["call_ids"]) <= 50 and d["call_ids"][0] in set(shifted)
    assert d["baseline"] < 22 and d["recent"] > 24
    # The alert reaches the webhook, naming the metric, the version and the calls.
    await async_wait_for(lambda: len(receiver.on("/drift")) >= 1, timeout=30)
    sent = [json.loads(r.body) for r in receiver.on("/drift")]
    words_sent = next(p for p in sent if "words_per_agent_turn" in json.dumps(p))
    text = json.dumps(words_sent)
    got = words_sent["alert"]
    assert got["kind"] == "drift_words_per_agent_turn" and got["detail"]["prompt_version"] == "v1"
    assert "words_per_agent_turn" in got["message"] and "v1" in got["message"]
    assert 0 < len(got["detail"]["call_ids"]) <= 50
    # The calls behind the alarm, latest first: the latest are the shifted ones (a CUSUM's
    # change-point estimate, or a test window, can reach a little before the shift).
    assert got["detail"]["call_ids"][0] in set(shifted)
    rows = _scores(drift_stack.engine, agent)
    ids = [c.id for c in rows]
    first_shifted = [c.platform_call_id for c in rows].index(shifted[0])

    def after(detail: dict[str, object]) -> int:
        return ids.index(detail["last_call_score_id"]) - first_shifted + 1

    print(
        f"drift e2e: {reference} reference calls, then {total - reference} shifted; first "
        f"words alarm after {after(got['detail'])} shifted calls ({got['detail']['detector']}, "
        f"{got['detail']['baseline']} -> {got['detail']['recent']} words); alerts: "
        + "; ".join(
            f"{a.kind} {a.detail['detector']} after {after(a.detail)} calls "
            f"({a.detail['baseline']} -> {a.detail['recent']})"
            for a in alerts
        )
        + f"; {time.monotonic() - started:.0f} s"
    )
    assert got["detail"]["call_ids"][0] in got["message"]
    assert "+1415" not in text  # never a caller's number

    # The state shows the latched alarm; acknowledging resolves the alert.
    view = http.get(f"/v1/agents/{agent}/drift", headers=viewer).json()
    words = next(m for m in view["versions"][0]["metrics"] if m["metric"] == "words_per_agent_turn")
    assert words["alarm_latched"] and words["phase"] == "alarmed"
    monkeypatch.setenv("BACKLINE_API_URL", drift_stack.api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", viewer["Authorization"].removeprefix("Bearer "))
    out = CliRunner().invoke(cli_app, ["drift", agent])  # the table, as `drift show`
    assert out.exit_code == 0 and f"Drift monitors of {agent}" in out.output, out.output
    out = CliRunner().invoke(cli_app, ["drift", "show", agent, "--json"])
    assert out.exit_code == 0, out.output
    shown = {m["metric"]: m for m in json.loads(out.output)["versions"][0]["metrics"]}
    assert shown["words_per_agent_turn"]["phase"] == "alarmed"
    g = shown["grounded"]
    print(f"drift e2e: grounded {g['phase']}, baseline {g['baseline']}, recent {g['recent']}")
    r = http.post(
        f"/v1/agents/{agent}/drift/v1/words_per_agent_turn/acknowledge",
        json={"rebaseline": False},
        headers=viewer,
    )
    assert r.status_code == 403, r.text
    r = http.post(
        f"/v1/agents/{agent}/drift/v1/words_per_agent_turn/acknowledge",
        json={"rebaseline": False},
        headers=release,
    )
    assert r.status_code == 200, r.text
    assert not r.json()["metric"]["alarm_latched"]
    with Session(drift_stack.engine) as s:
        assert s.get(Alert, alert.id).state == "resolved"  # type: ignore[union-attr]
    assert time.monotonic() - started < 120
