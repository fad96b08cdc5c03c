"""Read-only prompt queries for the dashboard: versions with labels, label history, rollouts
and their guard looks over time, experiments and their results, open alerts.

Plain dicts out, never ORM objects; never writes, flushes or commits; nothing here exposes a
caller (experiments keep no per-caller rows).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.monitoring.queries import open_alert_rows
from core.prompts import repository as repo
from core.prompts.models import PromptExperiment, PromptRollout, PromptVersion
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.schemas import version_ref
from core.prompts.service import PromptService
from core.tenancy.models import Agent


def list_prompt_agents(session: Session) -> list[dict[str, Any]]:
    """Agents that have at least one prompt version, with their version counts."""
    stmt = (
        select(Agent.id, Agent.org_id, Agent.name, func.count(col(PromptVersion.id)))
        .join(PromptVersion, col(PromptVersion.agent_id) == col(Agent.id))
        .group_by(col(Agent.id), col(Agent.org_id), col(Agent.name))
        .order_by(col(Agent.id))
    )
    return [
        {"agent_id": a, "org_id": o, "name": n, "versions": int(c)}
        for a, o, n, c in session.exec(stmt)
    ]


def list_versions(session: Session, agent_id: str) -> list[dict[str, Any]]:
    labels: dict[int, list[str]] = {}
    for label in repo.list_labels(session, agent_id):
        labels.setdefault(label.version, []).append(label.name)
    return [
        {
            "version": v.version,
            "ref": version_ref(v.version),
            "labels": ", ".join(sorted(labels.get(v.version, []))),
            "message": v.message,
            "created_by": v.created_by,
            "created_at": v.created_at,
            "tools": ", ".join(t.get("name", "?") for t in v.tools or []),
            "model": (v.model or {}).get("model"),
            "template": v.template,
        }
        for v in repo.list_versions(session, agent_id)
    ]


def label_history(session: Session, agent_id: str, limit: int = 50) -> list[dict[str, Any]]:
    return [
        {
            "at": m.at,
            "label": m.label,
            "from": version_ref(m.from_version) if m.from_version else None,
            "to": version_ref(m.to_version),
            "kind": m.kind,
            "actor": m.actor,
            "reason": m.reason,
        }
        for m in repo.label_moves(session, agent_id, None, limit)
    ]


def list_rollouts(session: Session, agent_id: str, limit: int = 20) -> list[dict[str, Any]]:
    stmt = (
        select(PromptRollout)
        .where(PromptRollout.agent_id == agent_id)
        .order_by(col(PromptRollout.id).desc())
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "candidate": version_ref(r.candidate_version),
            "control": version_ref(r.control_version),
            "status": r.status,
            "step": r.step_index,
            "steps": len(r.plan),
            "weight": r.weight,
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "created_by": r.created_by,
            "reason": r.reason,
            "outcome_reason": r.outcome_reason,
            "plan": r.plan,
        }
        for r in session.exec(stmt)
    ]


def rollout_checks(session: Session, rollout_id: int) -> list[dict[str, Any]]:
    """One row per guard look, oldest first, with the score of each arm flattened out."""
    out = []
    for c in repo.list_checks(session, rollout_id):
        score = (c.metrics or {}).get("score", {})
        out.append(
            {
                "at": c.at,
                "step": c.step_index,
                "weight": c.weight,
                "canary_n": c.canary_n,
                "control_n": c.control_n,
                "step_canary_n": c.step_canary_n,
                "verdict": c.verdict,
                "reason": c.reason,
                "canary_score": score.get("canary_mean"),
                "control_score": score.get("control_mean"),
                "score_log_lr": score.get("log_lr"),
                "score_threshold": score.get("threshold"),
                "metrics": c.metrics or {},
            }
        )
    return out


def list_experiments(session: Session, agent_id: str, limit: int = 20) -> list[dict[str, Any]]:
    stmt = (
        select(PromptExperiment)
        .where(PromptExperiment.agent_id == agent_id)
        .order_by(col(PromptExperiment.id).desc())
        .limit(limit)
    )
    return [
        {
            "id": e.id,
            "name": e.name,
            "kind": e.kind,
            "status": e.status,
            "control": version_ref(e.control_version),
            "split": ", ".join(
                f"{version_ref(v['version'])} {v['weight']:.0%}" for v in e.variants
            ),
            "started_at": e.started_at,
            "ended_at": e.ended_at,
        }
        for e in session.exec(stmt)
    ]


def experiment_results(
    session: Session, agent_id: str, experiment_id: int
) -> dict[str, Any] | None:
    agent = session.get(Agent, agent_id)
    if agent is None or repo.get_experiment(session, experiment_id) is None:
        return None
    # Results only read; the gate is never consulted here.
    results = PromptService(session, NoEvalSuiteGate()).experiment_results(agent, experiment_id)
    return results.model_dump(mode="json")


def open_alerts(session: Session, org_id: str, agent_id: str) -> list[dict[str, Any]]:
    """Open rollout alerts (knowledge alerts are shown on the Knowledge page)."""
    return open_alert_rows(session, agent_id, "prompt_", org_id=org_id)
