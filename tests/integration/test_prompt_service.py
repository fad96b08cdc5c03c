"""Prompt versions, labels and experiments on SQLite and Postgres: immutability, diffs,
protected and eval-gated labels, audited moves and rollbacks, the cache's change marker, and
experiment results from stored call outcomes."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.audit.models import AuditEvent
from core.errors import ConflictError, InvalidInputError, PermissionDeniedError
from core.prompts import repository as repo
from core.prompts.cache import PromptCache
from core.prompts.models import PromptVersion
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.schemas import ExperimentCreate, VariantIn
from core.prompts.service import PromptService
from core.tenancy.models import Agent
from tests.prompt_helpers import add_call, principal, seed_tenant, version_body


def _svc(session: Session) -> PromptService:
    return PromptService(session, NoEvalSuiteGate())


def test_versions_are_numbered_immutable_and_deduplicated(any_engine: Engine) -> None:
    org_id, agent_id = seed_tenant(any_engine, versions=2)
    with Session(any_engine) as session:
        svc, agent = _svc(session), session.get(Agent, agent_id)
        assert agent is not None
        again = svc.push_version(
            agent, version_body(2, message="same text"), principal(org_id, "content")
        )
        assert (again.version, again.created) == (2, False)
        third = svc.push_version(
            agent,
            version_body(3, tools=[{"name": "memory_search"}], variables={"brand": "Acme"}),
            principal(org_id, "content"),
        )
        session.commit()
        assert (third.version, third.created) == (3, True)
        assert third.tools[0]["parameters"]["required"] == ["query"]  # built-in schema filled
        stored = [
            v.version
            for v in session.exec(select(PromptVersion).where(PromptVersion.agent_id == agent_id))
        ]
        assert sorted(stored) == [1, 2, 3]

        with pytest.raises(InvalidInputError, match="nobody defines"):
            svc.push_version(
                agent,
                version_body(4, template="{{backline.mystery}}"),
                principal(org_id, "content"),
            )
        with pytest.raises(InvalidInputError, match="provider"):
            svc.push_version(
                agent, version_body(4, model={"temperature": 1}), principal(org_id, "content")
            )
        with pytest.raises(PermissionDeniedError):
            svc.push_version(agent, version_body(4), principal(org_id, "viewer"))

        diff = svc.diff(agent_id, 1, 3)
        assert diff.changed == ["template", "first_message", "variables", "tools"]
        assert "-You are Acme's agent (prompt 1)" in diff.template
        assert "+You are Acme's agent (prompt 3)" in diff.template
        assert diff.tools.added and diff.variables.added == {"brand": "Acme"}


def test_production_is_protected_and_moves_are_audited_and_reversible(any_engine: Engine) -> None:
    org_id, agent_id = seed_tenant(any_engine, versions=3, production=1)
    cache = PromptCache()
    with Session(any_engine) as session:
        cache.refresh(session)
        assert cache.resolve(agent_id, "caller-a") is not None
        assert cache.resolve(agent_id, "caller-a").version.version == 1  # type: ignore[union-attr]
        svc, agent = _svc(session), session.get(Agent, agent_id)
        assert agent is not None
        with pytest.raises(PermissionDeniedError, match="protected"):
            svc.move_label(
                agent, "production", 2, "content cannot ship", principal(org_id, "content")
            )
        # An unprotected label is the content scope's to move.
        svc.move_label(agent, "staging", 3, "try the new greeting", principal(org_id, "content"))
        before = repo.current_revision(session)
        moved = svc.move_label(agent, "production", 2, "ship v2", principal(org_id, "release"))
        session.commit()
        assert (moved.from_version, moved.label.version) == (1, 2)
        assert repo.current_revision(session) == before + 1
        assert "no eval suite configured" in moved.eval_gate

        assert cache.refresh(session) is True
        assert cache.resolve(agent_id, "caller-a").version.version == 2  # type: ignore[union-attr]
        assert cache.resolve(agent_id, "caller-a", label="staging").version.version == 3  # type: ignore[union-attr]
        assert cache.refresh(session) is False  # nothing moved: no reload

        back = svc.rollback_label(
            agent, "production", "v2 confuses callers", principal(org_id, "release")
        )
        session.commit()
        assert (back.from_version, back.label.version) == (2, 1)
        audit = session.exec(
            select(AuditEvent)
            .where(AuditEvent.org_id == org_id, col(AuditEvent.action).startswith("prompt.label"))
            .order_by(col(AuditEvent.id))
        ).all()
        assert [(a.action, a.actor, a.detail["reason"]) for a in audit][-2:] == [
            ("prompt.label.move", "key:release", "ship v2"),
            ("prompt.label.rollback", "key:release", "v2 confuses callers"),
        ]
        with pytest.raises(ConflictError, match="no earlier version"):
            svc.rollback_label(
                agent, "staging", "nothing to go back to", principal(org_id, "release")
            )


def test_eval_gate_refuses_promotion_when_required(any_engine: Engine) -> None:
    org_id, agent_id = seed_tenant(any_engine, versions=2, production=1)
    with Session(any_engine) as session:
        svc, agent = _svc(session), session.get(Agent, agent_id)
        assert agent is not None
        release = principal(org_id, "release")
        with pytest.raises(PermissionDeniedError):
            svc.set_policy(
                agent, "production", protected=None, require_eval_gate=True,
                reason="gate it", principal=principal(org_id, "content"),
            )  # fmt: skip
        svc.set_policy(
            agent, "production", protected=None, require_eval_gate=True,
            reason="gate it", principal=release,
        )  # fmt: skip
        with pytest.raises(ConflictError, match="no eval suite configured"):
            svc.move_label(agent, "production", 2, "ship", release)
        # Rolling back answers incidents: never gated.
        svc.apply_move(agent, "production", 2, "forced for the test", "test", "move", "-")
        assert svc.rollback_label(agent, "production", "incident", release).label.version == 1


def test_experiment_splits_traffic_and_reports_variant_results(any_engine: Engine) -> None:
    org_id, agent_id = seed_tenant(any_engine, versions=2, production=1)
    with Session(any_engine) as session:
        svc, agent = _svc(session), session.get(Agent, agent_id)
        assert agent is not None
        release = principal(org_id, "release")
        with pytest.raises(PermissionDeniedError):
            svc.create_experiment(
                agent,
                ExperimentCreate(
                    name="x", variants=[VariantIn(version=2, weight=0.5)], reason="a/b test"
                ),
                principal(org_id, "content"),
            )
        exp = svc.create_experiment(
            agent,
            ExperimentCreate(
                name="greeting", variants=[VariantIn(version=2, weight=0.5)], reason="a/b test"
            ),
            release,
        )
        session.commit()
        assert [(v.version, v.weight) for v in exp.variants] == [(2, 0.5), (1, 0.5)]
        cache = PromptCache()
        cache.refresh(session)
        served = [cache.resolve(agent_id, f"caller-{i}") for i in range(400)]
        share = sum(r is not None and r.version.version == 2 for r in served) / 400
        assert 0.4 < share < 0.6
        assert all(r is not None and r.source.startswith(f"experiment:{exp.id}") for r in served)

        for i in range(60):
            add_call(session, org_id, agent_id, 1, 70.0 + (i % 5), transferred=i % 10 == 0)
            add_call(session, org_id, agent_id, 2, 85.0 + (i % 5))
        session.commit()
        results = svc.experiment_results(agent, exp.id)
        by_version = {r.version: r for r in results.variants}
        assert by_version[1].calls == 60 and by_version[2].calls == 60
        assert by_version[2].score == pytest.approx(87.0)
        assert by_version[1].transfer_rate == pytest.approx(0.1)
        assert by_version[2].verdict == "better"
        assert results.verdict == "variant wins"

        svc.stop_experiment(agent, exp.id, "enough data", release)
        session.commit()
        cache.refresh(session)
        assert {cache.resolve(agent_id, f"c{i}").version.version for i in range(50)} == {1}  # type: ignore[union-attr]


def test_eval_gate_needs_a_passed_run_of_the_candidate_and_overrides_are_audited(
    any_engine: Engine,
) -> None:
    from core.evals.gate import StoredRunsEvalGate
    from core.evals.service import EvalService

    files = {"suite.yaml": "name: booking\n", "a.yaml": "name: a\nturns: [x]\n"}
    org_id, agent_id = seed_tenant(any_engine, versions=3, production=1)
    release = principal(org_id, "release")
    with Session(any_engine) as session:
        svc = PromptService(session, StoredRunsEvalGate(any_engine))
        agent = session.get(Agent, agent_id)
        assert agent is not None
        svc.set_policy(
            agent, "production", protected=None, require_eval_gate=True,
            reason="gate it", principal=release,
        )  # fmt: skip
        evals = EvalService(session)
        evals.register_suite(org_id, agent_id, "booking", files)
        run = evals.create_run(org_id, agent_id, "booking", files, 1, version=2)
        evals.start(run.id)
        evals.finish(run.id, "regressed")
        session.commit()
        with pytest.raises(ConflictError) as refused:
            svc.move_label(agent, "production", 2, "ship v2", release)
        assert "'booking' (its last run is regressed)" in refused.value.detail
        assert f"`backline eval run {agent_id} <suite folder> --version 2`" in refused.value.detail
        # A passed run of another version does not open the gate for this one.
        other = evals.create_run(org_id, agent_id, "booking", files, 1, version=3)
        evals.start(other.id)
        evals.finish(other.id, "passed")
        session.commit()
        with pytest.raises(ConflictError, match="version 2 has no passing eval run"):
            svc.move_label(agent, "production", 2, "ship v2", release)
        assert svc.move_label(agent, "production", 3, "ship v3", release).label.version == 3
        # Rolling back is never gated, even to a version without a passed run.
        assert svc.rollback_label(agent, "production", "incident", release).label.version == 1
        # Overriding needs the release scope, even on a label that is not protected.
        svc.move_label(agent, "staging", 1, "stage v1", principal(org_id, "content"))
        svc.set_policy(
            agent, "staging", protected=False, require_eval_gate=True,
            reason="gate staging", principal=release,
        )  # fmt: skip
        with pytest.raises(PermissionDeniedError, match="release scope"):
            svc.move_label(
                agent, "staging", 2, "try it", principal(org_id, "content"),
                override_eval_gate=True,
            )  # fmt: skip
        moved = svc.move_label(
            agent, "production", 2, "hotfix, suite is broken", release, override_eval_gate=True
        )
        session.commit()
        assert moved.label.version == 2 and moved.eval_gate.startswith("overridden by key:release")
        override = session.exec(
            select(AuditEvent).where(
                AuditEvent.org_id == org_id, AuditEvent.action == "prompt.label.gate_override"
            )
        ).one()
        assert override.actor == "key:release"
        assert override.detail["reason"] == "hotfix, suite is broken"
        assert "regressed" in override.detail["refused"]


def test_a_rollout_is_promoted_only_with_a_passed_run_of_its_candidate(any_engine: Engine) -> None:
    from core.evals.gate import StoredRunsEvalGate
    from core.evals.service import EvalService
    from core.prompts.rollouts import RolloutService

    files = {"suite.yaml": "name: booking\n", "a.yaml": "name: a\nturns: [x]\n"}
    org_id, agent_id = seed_tenant(any_engine, versions=2, production=1)
    with Session(any_engine) as session:
        gate = StoredRunsEvalGate(any_engine)
        agent = session.get(Agent, agent_id)
        assert agent is not None
        PromptService(session, gate).set_policy(
            agent, "production", protected=None, require_eval_gate=True,
            reason="gate it", principal=principal(org_id, "release"),
        )  # fmt: skip
        EvalService(session).register_suite(org_id, agent_id, "booking", files)
        session.commit()
        rollouts = RolloutService(session, gate)
        rollout = rollouts.begin(
            agent_id=agent_id, candidate_version=2, plan=[{"weight": 1.0}], actor="key:release",
            reason="roll v2", workflow_id="wf", run_id="run-1",
        )  # fmt: skip
        session.commit()
        assert rollout.id is not None
        promoted, detail = rollouts.promote(rollout.id, actor="key:release", reason="clean")
        assert not promoted and "'booking' (no run)" in detail and "--version 2`" in detail
        assert repo.get_label(session, agent_id, "production").version == 1  # type: ignore[union-attr]
        evals = EvalService(session)
        run = evals.create_run(org_id, agent_id, "booking", files, 1, version=2)
        evals.start(run.id)
        evals.finish(run.id, "passed")
        session.commit()
        promoted, _ = rollouts.promote(rollout.id, actor="key:release", reason="clean")
        session.commit()
        assert promoted
        assert repo.get_label(session, agent_id, "production").version == 2  # type: ignore[union-attr]
