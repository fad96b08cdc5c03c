"""The post-call score step stores the four-layer card from what the call recorded, and the
per-agent, per-version quality aggregates read it: the query, the route and the CLI."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from activities.post_call import PostCallActivities
from api.main import create_app
from api.state import AgentDirectory, AppState
from cli import http as cli_http
from cli.main import app as cli_app
from connectors.vectors.embedded import EmbeddedVectorStore
from core.calls.models import Call, CallEvent
from core.db import make_engine, utcnow
from core.knowledge.models import KnowledgeChunk
from core.memory.models import Fact
from core.monitoring import repository as monitoring_repo
from core.monitoring.queries import agent_quality
from core.ports import Embedder, VectorStore
from core.prompts.models import PromptVersion
from core.tenancy.models import Agent, Organization
from orchestration.post_call_types import CallInput
from tests.conftest import ADMIN_TOKEN, SECRET_KEY, make_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GROUNDED = [
    {"role": "agent", "text": "Thanks for calling Acme Dental, how can I help?"},
    {"role": "caller", "text": "I need a cleaning with my usual dentist. What does it cost?"},
    {"role": "agent", "text": "A cleaning is $85. Sarah Lee can see you at 9:30 on Monday."},
    {"role": "caller", "text": "Perfect, book it please. Thank you so much for the help."},
    {"role": "agent", "text": "It's booked, we open at 9am. Goodbye!"},
]
UNGROUNDED = [
    {"role": "agent", "text": "Thanks for calling Acme Dental, how can I help?"},
    {"role": "caller", "text": "How much is a whitening and can you book me in for it?"},
    {"role": "agent", "text": "Whitening is $300 and I guarantee a slot at 4pm tomorrow."},
    {"role": "caller", "text": "Hmm, I'd rather talk to a real person about that, thanks."},
]


def _seed_agent(session: Session, org: str, agent: str) -> None:
    session.add(Organization(id=org, name=org))
    session.flush()
    session.add(Agent(id=agent, org_id=org, name=agent))
    for version, compliance in ((1, True), (2, True)):
        session.add(
            PromptVersion(
                org_id=org,
                agent_id=agent,
                version=version,
                template="You are the receptionist of Acme Dental. A cleaning costs 85 dollars.",
                message="test",
                content_hash=f"{agent}-{version}",
                created_by="test",
                compliance=[
                    {"name": "brand", "must_say": "acme dental"},
                    {"name": "no_guarantees", "must_not_say": r"\bguarantee"},
                ]
                if compliance
                else [],
            )
        )
    session.add(
        KnowledgeChunk(
            id=f"{agent}-k1",
            org_id=org,
            agent_id=agent,
            kb_id="kb",
            source_id="src",
            doc_key="hours",
            text="Opening hours: nine o'clock to 17:00, Monday to Friday.",
            content_hash="h",
            fetched_at=utcnow(),
        )
    )
    session.add(
        Fact(
            org_id=org,
            agent_id=agent,
            caller_hash="caller-1",
            key="preferred_dentist",
            value="Sarah Lee",
            valid_from=utcnow() - timedelta(days=30),
            platform="vapi",
            source_call_id="an-earlier-call",
        )
    )


def _event(call: Call, type_: str, data: dict[str, Any]) -> CallEvent:
    return CallEvent(
        org_id=call.org_id,
        agent_id=call.agent_id,
        platform=call.platform,
        platform_call_id=call.platform_call_id,
        type=type_,
        platform_type=type_,
        data=data,
    )


def _seed_call(
    session: Session, org: str, agent: str, call_id: str, version: str, turns: list[Any]
) -> int:
    call = Call(
        org_id=org,
        agent_id=agent,
        platform="vapi",
        platform_call_id=call_id,
        caller_hash="caller-1",
        status="ended",
        started_at=utcnow() - timedelta(minutes=5),
        ended_at=utcnow(),
        ended_reason="customer-ended-call",
        transcript=turns,
        analysis={"turn_latency_ms": 600.0},
        prompt_version=version,
    )
    session.add(call)
    session.add(_event(call, "context_request", {"caller_known": True, "latency_ms": 140.0}))
    session.add(
        _event(
            call,
            "tool_call",
            {
                "tool": "book",
                "status": "ok",
                "ok": True,
                "outcome": '{"booked": true, "slot": "09:30", "day": "Monday"}',
                "latency_ms": 320.0,
            },
        )
    )
    session.add(
        _event(
            call,
            "tool_call",
            {"tool": "crm", "status": "timeout", "ok": False, "outcome": "", "latency_ms": 3000},
        )
    )
    session.add(
        _event(
            call,
            "knowledge_retrieval",
            {"status": "partial", "chunk_ids": [f"{agent}-k1"], "withheld": ["gone"]},
        )
    )
    session.flush()
    assert call.id is not None
    return call.id


def _score(engine: Engine, call_pk: int) -> float:
    activities = PostCallActivities(
        engine,
        SECRET_KEY,
        cast(Embedder, None),
        cast(VectorStore, None),
        analyzer=None,
    )
    return activities.score_call(CallInput(call_pk)).score


@pytest.fixture
def seeded(any_engine: Engine) -> tuple[Engine, str, int]:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    with Session(any_engine) as session:
        _seed_agent(session, f"org-{agent}", agent)
        first = _seed_call(session, f"org-{agent}", agent, "c1", "v1", GROUNDED)
        second = _seed_call(session, f"org-{agent}", agent, "c2", "v2", UNGROUNDED)
        session.commit()
    _score(any_engine, first)
    _score(any_engine, second)
    return any_engine, agent, first


def test_the_score_step_stores_the_layers_from_what_the_call_recorded(
    seeded: tuple[Engine, str, int],
) -> None:
    engine, agent, _ = seeded
    with Session(engine) as session:
        row = monitoring_repo.get_score(session, agent, "vapi", "c1")
        assert row is not None
        assert row.prompt_version == "v1"
        assert set(row.parts) >= {"completion", "escalation", "talk_ratio", "latency"}
        assert "notes" in row.parts
        assert set(row.layers) == {"infrastructure", "execution", "reaction", "outcome"}
        execution = row.layers["execution"]
        # $85 (prompt), Sarah Lee (memory), 9:30 (tool result), 9am (retrieved chunk)...
        assert execution["all_grounded"] is True, execution["ungrounded"]
        assert [c["passed"] for c in execution["compliance"]] == [True, True]
        metrics = row.metrics
        assert metrics["tool_calls"] == 2 and metrics["tool_failures"] == 1
        assert metrics["context_fetch_ms"] == 140.0
        assert metrics["stale_hits"] == 1
        assert metrics["all_grounded"] is True and metrics["grounded_ratio"] == 1.0
        assert row.layers["infrastructure"]["fallbacks_spoken"] == 1

        bad = monitoring_repo.get_score(session, agent, "vapi", "c2")
        assert bad is not None and bad.prompt_version == "v2"
        assert bad.metrics["all_grounded"] is False
        assert set(bad.layers["execution"]["ungrounded"]) == {"300", "4:00"}
        compliance = {c["name"]: c["passed"] for c in bad.layers["execution"]["compliance"]}
        assert compliance == {"brand": True, "no_guarantees": False}
        assert bad.layers["reaction"]["human_requests"] == 1
        assert bad.score < row.score


def test_scoring_again_rewrites_the_same_card(seeded: tuple[Engine, str, int]) -> None:
    engine, agent, pk = seeded
    with Session(engine) as session:
        before = monitoring_repo.get_score(session, agent, "vapi", "c1")
        assert before is not None
        layers, metrics = before.layers, before.metrics
    _score(engine, pk)
    with Session(engine) as session:
        after = monitoring_repo.get_score(session, agent, "vapi", "c1")
        assert after is not None and after.layers == layers and after.metrics == metrics


def test_quality_aggregates_per_version(seeded: tuple[Engine, str, int]) -> None:
    engine, agent, _ = seeded
    with Session(engine) as session:
        found = agent_quality(session, agent, period="7d", now=utcnow())
        only_v1 = agent_quality(session, agent, period="24h", version="v1", now=utcnow())
        future = agent_quality(session, agent, period="1h", now=utcnow() + timedelta(hours=3))

    assert found.overall.calls == 2 and found.overall.layered_calls == 2
    assert [g.prompt_version for g in found.versions] == ["v2", "v1"]
    assert found.overall.grounded_share == 0.5
    assert found.overall.tool_calls == 4 and found.overall.tool_failures == 2
    assert found.overall.tool_failure_rate == 0.5
    assert found.overall.containment == 1.0
    v1 = found.versions[1]
    assert v1.grounded_share == 1.0 and v1.calls == 1
    assert v1.layers.execution is not None and v1.layers.execution > 0.9
    assert v1.words_per_agent_turn is not None and v1.words_per_agent_turn > 5
    assert only_v1.overall.calls == 1 and [g.prompt_version for g in only_v1.versions] == ["v1"]
    assert future.overall.calls == 0 and future.overall.mean_score is None


@pytest.fixture
def api(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[TestClient, Engine, str]]:
    settings = make_settings(sqlite_url, tmp_path)
    engine = make_engine(sqlite_url)
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    with Session(engine) as session:
        _seed_agent(session, "org-1", agent)
        pk = _seed_call(session, "org-1", agent, "c1", "v1", GROUNDED)
        session.commit()
    _score(engine, pk)
    app = create_app(settings)
    app.state.backline = AppState(
        settings=settings,
        engine=engine,
        embedder=cast(Embedder, None),
        vectors=EmbeddedVectorStore(engine),
        agents=AgentDirectory(engine, SECRET_KEY),
    )
    client = TestClient(app)  # no lifespan: the state is set above
    yield client, engine, agent
    engine.dispose()


def test_the_quality_route_and_the_call_view(api: tuple[TestClient, Engine, str]) -> None:
    client, _, agent = api

    got = client.get(f"/v1/agents/{agent}/quality", params={"period": "30d"}, headers=ADMIN)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["overall"]["calls"] == 1 and body["versions"][0]["prompt_version"] == "v1"
    assert body["overall"]["grounded_share"] == 1.0
    assert set(body["overall"]["layers"]) == {"infrastructure", "execution", "reaction", "outcome"}

    bad = client.get(f"/v1/agents/{agent}/quality", params={"period": "soon"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"] == "InvalidInputError"
    bad = client.get(f"/v1/agents/{agent}/quality", params={"version": "3"}, headers=ADMIN)
    assert bad.status_code == 422 and "v3" in bad.json()["detail"]
    assert client.get(f"/v1/agents/{agent}/quality").status_code == 401
    assert client.get("/v1/agents/nobody/quality", headers=ADMIN).status_code == 404

    detail = client.get(f"/v1/calls/{agent}/vapi/c1", headers=ADMIN).json()
    assert detail["score_layers"]["execution"]["all_grounded"] is True
    assert detail["score_metrics"]["tool_failures"] == 1


def test_the_quality_command_prints_a_table_or_json(
    api: tuple[TestClient, Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, agent = api
    monkeypatch.setenv("BACKLINE_API_KEY", ADMIN_TOKEN)
    monkeypatch.setenv("COLUMNS", "200")
    client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    # The CLI opens ``with client() as http``: hand it the test client without its lifespan.
    monkeypatch.setattr(cli_http, "client", lambda *a, **k: contextlib.nullcontext(client))

    table = CliRunner().invoke(cli_app, ["quality", agent, "--period", "30d"])
    assert table.exit_code == 0, table.output
    assert "Call quality of" in table.output and "v1" in table.output
    assert "100%" in table.output  # grounded share, containment
    as_json = CliRunner().invoke(cli_app, ["quality", agent, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["overall"]["calls"] == 1
    refused = CliRunner().invoke(cli_app, ["quality", agent, "--period", "soon"])
    assert refused.exit_code != 0 and "24h" in refused.output
