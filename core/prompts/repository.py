"""Prompt queries. Returns models or None; never commits.

``bump_revision`` is the only write that is not a plain ``session.add``: it must land in the
same transaction as the change it announces, so caches never reload before the change is
visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.calls.models import Call, CallEvent
from core.db import utcnow
from core.monitoring.models import CallScore
from core.prompts.models import (
    PromptExperiment,
    PromptLabel,
    PromptLabelMove,
    PromptRevision,
    PromptRollout,
    PromptRolloutCheck,
    PromptVersion,
)

RUNNING = "running"
ACTIVE_ROLLOUT = ("running", "paused")
ENDED_CALL_STATUSES = ("ended", "processed")


# -- change marker -------------------------------------------------------------------------


def current_revision(session: Session) -> int:
    row = session.get(PromptRevision, 1)
    return row.revision if row is not None else 0


def bump_revision(session: Session) -> None:
    result = session.execute(
        update(PromptRevision)
        .where(col(PromptRevision.id) == 1)
        .values(revision=PromptRevision.revision + 1, updated_at=utcnow())
    )
    if int(getattr(result, "rowcount", 0) or 0) > 0:
        return
    # The migration seeds the row; a schema made by create_all (tests, dashboard) may not have
    # it. Two first writers race on the primary key; the loser retries the update.
    try:
        with session.begin_nested():
            session.add(PromptRevision(id=1, revision=1))
            session.flush()
    except IntegrityError:
        session.execute(
            update(PromptRevision)
            .where(col(PromptRevision.id) == 1)
            .values(revision=PromptRevision.revision + 1, updated_at=utcnow())
        )


# -- versions ------------------------------------------------------------------------------


def get_version(session: Session, agent_id: str, version: int) -> PromptVersion | None:
    stmt = select(PromptVersion).where(
        PromptVersion.agent_id == agent_id, PromptVersion.version == version
    )
    return session.exec(stmt).first()


def find_version_by_hash(
    session: Session, agent_id: str, content_hash: str
) -> PromptVersion | None:
    stmt = select(PromptVersion).where(
        PromptVersion.agent_id == agent_id, PromptVersion.content_hash == content_hash
    )
    return session.exec(stmt.order_by(col(PromptVersion.version))).first()


def latest_version_number(session: Session, agent_id: str) -> int:
    stmt = select(func.max(PromptVersion.version)).where(PromptVersion.agent_id == agent_id)
    return int(session.exec(stmt).one() or 0)


def count_versions(session: Session, agent_id: str) -> int:
    stmt = select(func.count()).where(PromptVersion.agent_id == agent_id)
    return int(session.exec(stmt).one())


def list_versions(session: Session, agent_id: str, limit: int = 200) -> list[PromptVersion]:
    stmt = (
        select(PromptVersion)
        .where(PromptVersion.agent_id == agent_id)
        .order_by(col(PromptVersion.version).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def versions_for(session: Session, pairs: Iterable[tuple[str, int]]) -> list[PromptVersion]:
    wanted = set(pairs)
    if not wanted:
        return []
    agents = {a for a, _ in wanted}
    numbers = {v for _, v in wanted}
    stmt = select(PromptVersion).where(
        col(PromptVersion.agent_id).in_(agents), col(PromptVersion.version).in_(numbers)
    )
    return [v for v in session.exec(stmt) if (v.agent_id, v.version) in wanted]


# -- labels --------------------------------------------------------------------------------


def get_label(session: Session, agent_id: str, name: str) -> PromptLabel | None:
    stmt = select(PromptLabel).where(PromptLabel.agent_id == agent_id, PromptLabel.name == name)
    return session.exec(stmt).first()


def list_labels(session: Session, agent_id: str) -> list[PromptLabel]:
    stmt = select(PromptLabel).where(PromptLabel.agent_id == agent_id)
    return list(session.exec(stmt.order_by(col(PromptLabel.name))))


def all_labels(session: Session) -> list[PromptLabel]:
    return list(session.exec(select(PromptLabel)))


def label_moves(
    session: Session, agent_id: str, label: str | None = None, limit: int = 100
) -> list[PromptLabelMove]:
    stmt = select(PromptLabelMove).where(PromptLabelMove.agent_id == agent_id)
    if label is not None:
        stmt = stmt.where(PromptLabelMove.label == label)
    return list(session.exec(stmt.order_by(col(PromptLabelMove.id).desc()).limit(limit)))


# -- experiments and rollouts -------------------------------------------------------------


def get_experiment(session: Session, experiment_id: int) -> PromptExperiment | None:
    return session.get(PromptExperiment, experiment_id)


def running_experiment(session: Session, agent_id: str) -> PromptExperiment | None:
    stmt = select(PromptExperiment).where(
        PromptExperiment.agent_id == agent_id, PromptExperiment.status == RUNNING
    )
    return session.exec(stmt.order_by(col(PromptExperiment.id).desc())).first()


def running_experiments(session: Session) -> list[PromptExperiment]:
    stmt = select(PromptExperiment).where(PromptExperiment.status == RUNNING)
    return list(session.exec(stmt))


def list_experiments(session: Session, agent_id: str, limit: int = 50) -> list[PromptExperiment]:
    stmt = (
        select(PromptExperiment)
        .where(PromptExperiment.agent_id == agent_id)
        .order_by(col(PromptExperiment.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def get_rollout(session: Session, rollout_id: int) -> PromptRollout | None:
    return session.get(PromptRollout, rollout_id)


def get_rollout_by_run(session: Session, run_id: str) -> PromptRollout | None:
    return session.exec(select(PromptRollout).where(PromptRollout.run_id == run_id)).first()


def latest_rollout(session: Session, agent_id: str) -> PromptRollout | None:
    stmt = select(PromptRollout).where(PromptRollout.agent_id == agent_id)
    return session.exec(stmt.order_by(col(PromptRollout.id).desc())).first()


def list_rollouts(session: Session, agent_id: str, limit: int = 20) -> list[PromptRollout]:
    stmt = (
        select(PromptRollout)
        .where(PromptRollout.agent_id == agent_id)
        .order_by(col(PromptRollout.id).desc())
        .limit(limit)
    )
    return list(session.exec(stmt))


def active_rollout(session: Session, agent_id: str) -> PromptRollout | None:
    stmt = select(PromptRollout).where(
        PromptRollout.agent_id == agent_id, col(PromptRollout.status).in_(ACTIVE_ROLLOUT)
    )
    return session.exec(stmt.order_by(col(PromptRollout.id).desc())).first()


def list_checks(session: Session, rollout_id: int, limit: int = 1000) -> list[PromptRolloutCheck]:
    stmt = (
        select(PromptRolloutCheck)
        .where(PromptRolloutCheck.rollout_id == rollout_id)
        .order_by(col(PromptRolloutCheck.id))
        .limit(limit)
    )
    return list(session.exec(stmt))


# -- call outcomes -------------------------------------------------------------------------


def call_outcome_rows(
    session: Session, agent_id: str, refs: Iterable[str], since: datetime
) -> list[tuple[str, str, str, datetime, str | None, dict[str, Any], float | None, Any]]:
    """(prompt_version, platform, call id, created_at, ended_reason, analysis, score, parts)
    of the agent's ended calls served by ``refs`` since ``since``."""
    # Plain SQLAlchemy select: eight columns are past sqlmodel's typed overloads.
    stmt = (
        sa_select(
            col(Call.prompt_version),
            col(Call.platform),
            col(Call.platform_call_id),
            col(Call.created_at),
            col(Call.ended_reason),
            col(Call.analysis),
            col(CallScore.score),
            col(CallScore.parts),
        )
        .outerjoin(
            CallScore,
            (col(CallScore.agent_id) == col(Call.agent_id))
            & (col(CallScore.platform) == col(Call.platform))
            & (col(CallScore.platform_call_id) == col(Call.platform_call_id)),
        )
        .where(
            col(Call.agent_id) == agent_id,
            col(Call.prompt_version).in_(list(refs)),
            col(Call.status).in_(ENDED_CALL_STATUSES),
            col(Call.created_at) >= since,
        )
    )
    return [tuple(row) for row in session.execute(stmt)]


def tool_event_rows(
    session: Session, agent_id: str, since: datetime
) -> list[tuple[str, str, dict[str, Any]]]:
    """(platform, call id, data) of the agent's tool-call events since ``since``."""
    stmt = select(CallEvent.platform, CallEvent.platform_call_id, CallEvent.data).where(
        CallEvent.agent_id == agent_id,
        CallEvent.type == "tool_calls",
        col(CallEvent.at) >= since,
    )
    return [(p, c, dict(d or {})) for p, c, d in session.exec(stmt)]
