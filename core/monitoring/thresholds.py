"""Threshold rules: an agent's call-score aggregate over its last N scored calls, compared to a
bound. Evaluated each time a call is scored; while the condition holds the rule's alert
(``score_threshold``, subject ``alert_rule:<id>``) is firing, and it resolves by itself once the
condition clears. Too few scored calls yet: no verdict, nothing changes."""

from __future__ import annotations

import operator
from collections.abc import Callable

from sqlmodel import Session, col, select

from core.monitoring.alerts import raise_alert, resolve_subject
from core.monitoring.delivery import agent_rules, rule_subject
from core.monitoring.models import AlertRule, CallScore

THRESHOLD_KIND = "score_threshold"
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "score_mean": lambda xs: sum(xs) / len(xs),
    "score_min": min,
}


def metric_value(session: Session, agent_id: str, metric: str, window: int) -> float | None:
    """The metric over the agent's last ``window`` scored calls; None with fewer calls."""
    stmt = (
        select(CallScore.score)
        .where(CallScore.agent_id == agent_id)
        .order_by(col(CallScore.created_at).desc(), col(CallScore.id).desc())
        .limit(window)
    )
    scores = list(session.exec(stmt))
    if len(scores) < window:
        return None
    return AGGREGATES[metric](scores)


def breached(rule: AlertRule, value: float) -> bool:
    assert rule.op is not None and rule.value is not None
    return OPS[rule.op](value, rule.value)


def evaluate(session: Session, agent_id: str) -> list[tuple[int, float, bool]]:
    """Evaluate the agent's enabled threshold rules; returns (rule id, value, breached)."""
    out: list[tuple[int, float, bool]] = []
    for rule in agent_rules(session, agent_id):
        if rule.kind != "threshold" or not rule.enabled:
            continue
        assert rule.metric and rule.window_calls and rule.id is not None
        value = metric_value(session, agent_id, rule.metric, rule.window_calls)
        if value is None:
            continue
        hit = breached(rule, value)
        subject = rule_subject(rule.id)
        if hit:
            raise_alert(
                session,
                org_id=rule.org_id,
                agent_id=agent_id,
                kind=THRESHOLD_KIND,
                severity=rule.min_severity,
                subject=subject,
                message=(
                    f"{rule.metric} over the last {rule.window_calls} calls is {value:.3f} "
                    f"({rule.op} {rule.value}): rule '{rule.name}'"
                ),
                detail={
                    "rule_id": rule.id,
                    "metric": rule.metric,
                    "value": round(value, 4),
                    "op": rule.op,
                    "bound": rule.value,
                    "window_calls": rule.window_calls,
                },
            )
        else:
            resolve_subject(
                session,
                subject=subject,
                kinds=(THRESHOLD_KIND,),
                resolution=f"{rule.metric} back to {value:.3f} over the last "
                f"{rule.window_calls} calls",
            )
        out.append((rule.id, value, hit))
    return out
