"""The Prompts & Rollouts page against a seeded SQLite file: versions with labels, a rolled-back
rollout with its guard looks and alert, and an experiment's results."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

import core.prompts.models  # noqa: F401  (registers the prompt tables before create_all)
from core.db import make_engine
from core.monitoring.alerts import raise_alert
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.rollouts import RolloutService
from core.prompts.schemas import ExperimentCreate, VariantIn
from core.prompts.service import PromptService
from core.tenancy.models import Agent, Organization
from tests.dashboard.seed import create_schema
from tests.prompt_helpers import add_call, principal, version_body

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGE = "app_pages/prompts.py"
TIMEOUT_S = 60
ORG_ID, AGENT_ID = "org-acme", "front-desk"


def _seed_agent(url: str) -> None:
    create_schema(url)
    engine = make_engine(url)
    with Session(engine) as session:
        session.add(Organization(id=ORG_ID, name="Acme"))
        session.flush()
        session.add(Agent(id=AGENT_ID, org_id=ORG_ID, name="Front desk"))
        session.commit()
    engine.dispose()


def _seed_prompts(url: str) -> None:
    engine = make_engine(url)
    release = principal(ORG_ID, "release")
    with Session(engine, expire_on_commit=False) as session:
        agent = session.get(Agent, AGENT_ID)
        assert agent is not None
        prompts = PromptService(session, NoEvalSuiteGate())
        for n in (1, 2, 3):
            prompts.push_version(agent, version_body(n), release)
        prompts.move_label(agent, "production", 1, "first release", release)
        prompts.move_label(agent, "staging", 2, "qa run", release)
        rollouts = RolloutService(session, NoEvalSuiteGate())
        rollout = rollouts.begin(
            agent_id=AGENT_ID,
            candidate_version=3,
            plan=[{"weight": 0.2, "hold_s": 60, "min_canary_calls": 20, "max_duration_s": 600}],
            actor="key:release",
            reason="new greeting",
            workflow_id=f"prompt-rollout-{AGENT_ID}",
            run_id="run-1",
        )
        assert rollout.id is not None
        rollouts.set_weight(rollout.id, 0, 0.2)
        for i in range(30):
            add_call(session, ORG_ID, AGENT_ID, 1, 80.0 + i % 3)
            add_call(session, ORG_ID, AGENT_ID, 3, 40.0 + i % 3)
        session.flush()
        check = rollouts.check(rollout.id, 0)
        assert check.report.verdict == "breach"
        rollouts.roll_back(
            rollout.id,
            outcome="rolled_back",
            actor="rollout",
            reason=check.report.reason,
            alert=True,
        )
        experiment = prompts.create_experiment(
            agent,
            ExperimentCreate(
                name="greeting", variants=[VariantIn(version=2, weight=0.5)], reason="a/b test"
            ),
            release,
        )
        for i in range(25):
            add_call(session, ORG_ID, AGENT_ID, 1, 70.0 + i % 4)
            add_call(session, ORG_ID, AGENT_ID, 2, 85.0 + i % 4)
        prompts.stop_experiment(agent, experiment.id, "enough data", release)
        # A knowledge alert of the same agent belongs on the Knowledge page, not here.
        raise_alert(
            session,
            org_id=ORG_ID,
            agent_id=AGENT_ID,
            kind="knowledge_source_failing",
            message="Knowledge source 'prices' could not be refreshed",
            subject="knowledge_source:src_1",
        )
        session.commit()
    engine.dispose()


@pytest.fixture
def agent_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'backline.db'}"
    _seed_agent(url)
    monkeypatch.setenv("BACKLINE_DATABASE_URL", url)
    return url


@pytest.fixture
def prompts_db(agent_db: str) -> str:
    _seed_prompts(agent_db)
    return agent_db


def _open() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_prompts_page_shows_versions_rollout_and_experiment(prompts_db: str) -> None:
    at = _open()

    assert at.title[0].value == "Prompts & Rollouts"
    versions = at.get_by_key("prompt_versions").dataframe[0].value
    assert list(versions["ref"]) == ["v3", "v2", "v1"]
    assert dict(zip(versions["ref"], versions["labels"], strict=True)) == {
        "v3": "",
        "v2": "staging",
        "v1": "production",
    }
    assert any("rolled back" in e.value and "quality score" in e.value for e in at.error)
    shown = [e.value for e in at.error] + [w.value for w in at.warning]
    assert not any("knowledge_source_failing" in v for v in shown), shown
    text = "\n".join(m.value for m in at.markdown)
    assert "**rolled_back**" in text and "plan 20%" in text
    checks = at.get_by_key("rollout_checks").dataframe[0].value
    assert list(checks["verdict"]) == ["breach"]
    assert len(at.get("plotly_chart")) == 3

    results = at.get_by_key("experiment_results").dataframe[0].value
    assert set(results["ref"]) == {"v1", "v2"}
    assert "**variant wins**" in "\n".join(m.value for m in at.markdown)


def test_prompts_page_without_versions_explains_how_to_push_one(agent_db: str) -> None:
    at = _open()

    assert len(at.info) == 1 and "backline prompts push" in at.info[0].value
