"""Prompt rules: immutable versions, diffs, labels (protected, eval-gated, audited), experiments.

Every change that alters what callers are served bumps the change marker in the same
transaction, and every label move is audited with who and why. Versions are never updated or
deleted. The service never commits (the request or activity boundary does) and never reads the
clock for anything but timestamps.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from core.audit.service import record_audit
from core.audit.targets import agent_target
from core.db import utcnow
from core.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from core.prompts import repository as repo
from core.prompts.metrics import arm_stats, load_outcomes, split_by_version
from core.prompts.models import PromptExperiment, PromptLabel, PromptLabelMove, PromptVersion
from core.prompts.ports import EvalGate, EvalGateResult
from core.prompts.render import (
    BUILTIN_VARIABLES,
    TIMEZONE_VARIABLE,
    VARIABLE_NAME,
    unknown_variables,
    valid_timezone,
)
from core.prompts.schemas import (
    PRODUCTION,
    ExperimentCreate,
    ExperimentPublic,
    ExperimentResults,
    FieldChanges,
    Interval,
    LabelMoveResult,
    LabelPublic,
    PromptStatus,
    PromptVersionCreate,
    PromptVersionPublic,
    PushResult,
    RolloutPublic,
    ServedPlan,
    VariantPublic,
    VariantResult,
    VersionDiff,
    VersusControl,
    version_ref,
)
from core.prompts.sequential import DEFAULT_GUARDS, ArmStats, Guard, compare, mean_ci95
from core.tenancy.models import Agent
from core.tenancy.service import Principal
from core.tools.builtins import BUILTIN_TOOLS

WRITE_SCOPES = ("content", "release")
RELEASE = "release"
COMPARED = ("score", "completion", "transferred", "tool_failure", "latency_ms")


def require_any(principal: Principal, scopes: tuple[str, ...], org_id: str) -> None:
    """Pass when the principal holds any of ``scopes`` in ``org_id``."""
    errors: list[str] = []
    for scope in scopes:
        try:
            principal.require(scope, org_id)
            return
        except PermissionDeniedError as exc:
            errors.append(exc.detail)
    if any("belongs to organization" in e for e in errors):
        raise PermissionDeniedError(errors[0])
    raise PermissionDeniedError(
        f"this needs one of the scopes {list(scopes)}; the key has {sorted(principal.scopes)}"
    )


def content_hash(data: PromptVersionCreate) -> str:
    body = {
        "template": data.template,
        "variables": data.variables,
        "model": data.model,
        "first_message": data.first_message,
        "tools": [t.model_dump(exclude_none=True) for t in data.tools],
    }
    if data.compliance:  # only when declared: versions pushed before keep their hashes
        body["compliance"] = [c.model_dump(exclude_none=True) for c in data.compliance]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def version_public(row: PromptVersion, labels: list[str] | None = None) -> PromptVersionPublic:
    return PromptVersionPublic(
        agent_id=row.agent_id,
        version=row.version,
        ref=version_ref(row.version),
        template=row.template,
        variables=dict(row.variables or {}),
        model=dict(row.model or {}),
        first_message=row.first_message,
        tools=list(row.tools or []),
        compliance=list(row.compliance or []),
        message=row.message,
        content_hash=row.content_hash,
        created_by=row.created_by,
        created_at=row.created_at,
        labels=sorted(labels or []),
    )


def label_public(row: PromptLabel) -> LabelPublic:
    return LabelPublic(
        name=row.name,
        version=row.version,
        ref=version_ref(row.version),
        protected=row.protected,
        require_eval_gate=row.require_eval_gate,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def experiment_public(row: PromptExperiment) -> ExperimentPublic:
    assert row.id is not None
    return ExperimentPublic(
        id=row.id,
        agent_id=row.agent_id,
        name=row.name,
        kind=row.kind,
        status=row.status,
        control_version=row.control_version,
        variants=[VariantPublic(version=v["version"], weight=v["weight"]) for v in row.variants],
        created_by=row.created_by,
        reason=row.reason,
        stop_reason=row.stop_reason,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> FieldChanges:
    return FieldChanges(
        added={k: new[k] for k in new if k not in old},
        removed={k: old[k] for k in old if k not in new},
        changed={k: {"from": old[k], "to": new[k]} for k in new if k in old and old[k] != new[k]},
    )


def _unified(old: str, new: str, a: str, b: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=a, tofile=b
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class PromptService:
    def __init__(self, session: Session, eval_gate: EvalGate) -> None:
        self.session = session
        self._gate = eval_gate

    # -- versions ------------------------------------------------------------------------
    def push_version(
        self, agent: Agent, data: PromptVersionCreate, principal: Principal
    ) -> PushResult:
        require_any(principal, WRITE_SCOPES, agent.org_id)
        tools = self._validate(data)
        digest = content_hash(data)
        existing = repo.find_version_by_hash(self.session, agent.id, digest)
        if existing is not None:
            # Same content is the same version: pushing it again creates nothing.
            public = version_public(existing, self._labels_of(agent.id, existing.version))
            return PushResult(**public.model_dump(), created=False)
        number = repo.latest_version_number(self.session, agent.id) + 1
        row = PromptVersion(
            org_id=agent.org_id,
            agent_id=agent.id,
            version=number,
            template=data.template,
            variables=dict(data.variables),
            model=dict(data.model),
            first_message=data.first_message,
            tools=tools,
            compliance=[c.model_dump(exclude_none=True) for c in data.compliance],
            message=data.message,
            content_hash=digest,
            created_by=principal.actor,
        )
        self.session.add(row)
        self.session.flush()  # the unique (agent, version) constraint rejects a racing push
        record_audit(
            self.session,
            actor=principal.actor,
            action="prompt.version.push",
            target=agent_target(agent.id, "prompts"),
            org_id=agent.org_id,
            detail={"version": number, "message": data.message, "content_hash": digest},
        )
        return PushResult(**version_public(row).model_dump(), created=True)

    def _validate(self, data: PromptVersionCreate) -> list[dict[str, Any]]:
        bad_names = [k for k in data.variables if not VARIABLE_NAME.match(k)]
        if bad_names:
            raise InvalidInputError(
                f"variable names must be letters, digits and _ (starting with a letter): "
                f"{bad_names}"
            )
        shadowing = sorted(set(data.variables) & set(BUILTIN_VARIABLES))
        if shadowing:
            raise InvalidInputError(
                f"variables {shadowing} are Backline built-ins and cannot be redefined; rename them"
            )
        unknown = unknown_variables(data.variables, data.template, data.first_message)
        if unknown:
            raise InvalidInputError(
                f"the template uses Backline variables nobody defines: {unknown}; declare them "
                f"under 'variables' or use a built-in ({sorted(BUILTIN_VARIABLES)})"
            )
        tz = data.variables.get(TIMEZONE_VARIABLE)
        if tz is not None and not valid_timezone(str(tz)):
            raise InvalidInputError(f"unknown timezone '{tz}'; use an IANA name like Europe/Paris")
        if data.model and not all(
            isinstance(data.model.get(k), str) and data.model.get(k) for k in ("provider", "model")
        ):
            raise InvalidInputError(
                "model settings need 'provider' and 'model' (e.g. {'provider': 'openai', "
                "'model': 'gpt-4o-mini', 'temperature': 0.3}); leave 'model' empty to keep the "
                "platform assistant's own model"
            )
        tools: list[dict[str, Any]] = []
        seen: set[str] = set()
        for tool in data.tools:
            if tool.name in seen:
                raise InvalidInputError(f"tool '{tool.name}' is listed twice")
            seen.add(tool.name)
            spec = tool.model_dump(exclude_none=True)
            builtin = BUILTIN_TOOLS.get(tool.name)
            if builtin is not None:
                spec.setdefault("description", builtin["description"])
                spec.setdefault("parameters", builtin["parameters"])
            elif tool.description is None or tool.parameters is None:
                raise InvalidInputError(
                    f"tool '{tool.name}' is not a Backline built-in "
                    f"({sorted(BUILTIN_TOOLS)}); give its 'description' and 'parameters'"
                )
            tools.append(spec)
        return tools

    def require_version(self, agent_id: str, version: int) -> PromptVersion:
        row = repo.get_version(self.session, agent_id, version)
        if row is None:
            raise NotFoundError(f"agent '{agent_id}' has no prompt version {version}")
        return row

    def _labels_of(self, agent_id: str, version: int) -> list[str]:
        return [lb.name for lb in repo.list_labels(self.session, agent_id) if lb.version == version]

    def list_versions(self, agent_id: str) -> list[PromptVersionPublic]:
        by_version: dict[int, list[str]] = {}
        for label in repo.list_labels(self.session, agent_id):
            by_version.setdefault(label.version, []).append(label.name)
        return [
            version_public(v, by_version.get(v.version))
            for v in repo.list_versions(self.session, agent_id)
        ]

    def get_version(self, agent_id: str, version: int) -> PromptVersionPublic:
        row = self.require_version(agent_id, version)
        return version_public(row, self._labels_of(agent_id, version))

    def diff(self, agent_id: str, from_version: int, to_version: int) -> VersionDiff:
        a = self.require_version(agent_id, from_version)
        b = self.require_version(agent_id, to_version)
        ra, rb = version_ref(a.version), version_ref(b.version)
        template = _unified(a.template, b.template, f"{ra}/template", f"{rb}/template")
        first = _unified(
            a.first_message or "", b.first_message or "", f"{ra}/first_message", f"{rb}/first"
        )
        tools_a = {t["name"]: t for t in a.tools or []}
        tools_b = {t["name"]: t for t in b.tools or []}
        model = _changes(a.model or {}, b.model or {})
        variables = _changes(a.variables or {}, b.variables or {})
        tools = _changes(tools_a, tools_b)
        changed = [
            name
            for name, differs in (
                ("template", bool(template)),
                ("first_message", bool(first)),
                ("model", bool(model.added or model.removed or model.changed)),
                ("variables", bool(variables.added or variables.removed or variables.changed)),
                ("tools", bool(tools.added or tools.removed or tools.changed)),
            )
            if differs
        ]
        return VersionDiff(
            agent_id=agent_id,
            from_version=from_version,
            to_version=to_version,
            changed=changed,
            template=template,
            first_message=first,
            model=model,
            variables=variables,
            tools=tools,
            message=b.message,
        )

    # -- labels --------------------------------------------------------------------------
    def list_labels(self, agent_id: str) -> list[LabelPublic]:
        return [label_public(lb) for lb in repo.list_labels(self.session, agent_id)]

    def label_history(self, agent_id: str, label: str | None) -> list[PromptLabelMove]:
        return repo.label_moves(self.session, agent_id, label)

    def _require_label_scope(
        self, agent: Agent, name: str, label: PromptLabel | None, principal: Principal
    ) -> None:
        protected = label.protected if label is not None else name == PRODUCTION
        if protected:
            try:
                principal.require(RELEASE, agent.org_id)
            except PermissionDeniedError as exc:
                raise PermissionDeniedError(
                    f"label '{name}' is protected: only the release scope may move it "
                    f"({exc.detail})"
                ) from exc
        else:
            require_any(principal, WRITE_SCOPES, agent.org_id)

    def check_gate(
        self, agent: Agent, name: str, version: int, label: PromptLabel | None
    ) -> EvalGateResult:
        required = label.require_eval_gate if label is not None else False
        return self._gate.check(agent.org_id, agent.id, version, required=required)

    def move_label(
        self,
        agent: Agent,
        name: str,
        version: int,
        reason: str,
        principal: Principal,
        *,
        override_eval_gate: bool = False,
    ) -> LabelMoveResult:
        label = repo.get_label(self.session, agent.id, name)
        self._require_label_scope(agent, name, label, principal)
        self.require_version(agent.id, version)
        if name == PRODUCTION and repo.active_rollout(self.session, agent.id) is not None:
            raise ConflictError(
                "a rollout is running on this agent: it moves production itself when it "
                "promotes; abort it first (backline prompts rollout abort)"
            )
        gate = self.check_gate(agent, name, version, label)
        detail = gate.detail
        if not gate.passed:
            if not override_eval_gate:
                raise ConflictError(f"eval gate refused v{version} for '{name}': {gate.detail}")
            # Overriding a refused gate is a release decision, whatever the label's protection.
            try:
                principal.require(RELEASE, agent.org_id)
            except PermissionDeniedError as exc:
                raise PermissionDeniedError(
                    f"overriding the eval gate of label '{name}' needs the release scope "
                    f"({exc.detail})"
                ) from exc
            record_audit(
                self.session,
                actor=principal.actor,
                action="prompt.label.gate_override",
                target=agent_target(agent.id, "label", name),
                org_id=agent.org_id,
                detail={"version": version, "reason": reason, "refused": gate.detail},
            )
            detail = f"overridden by {principal.actor}: {gate.detail}"
        return self.apply_move(agent, name, version, reason, principal.actor, "move", detail)

    def rollback_label(
        self,
        agent: Agent,
        name: str,
        reason: str,
        principal: Principal,
        to_version: int | None = None,
    ) -> LabelMoveResult:
        label = repo.get_label(self.session, agent.id, name)
        if label is None:
            raise NotFoundError(f"agent '{agent.id}' has no label '{name}'")
        self._require_label_scope(agent, name, label, principal)
        if to_version is None:
            previous = next(
                (
                    m.from_version
                    for m in repo.label_moves(self.session, agent.id, name)
                    if m.to_version == label.version and m.from_version is not None
                ),
                None,
            )
            if previous is None:
                raise ConflictError(
                    f"label '{name}' has no earlier version to roll back to; name one with "
                    "to_version"
                )
            to_version = previous
        self.require_version(agent.id, to_version)
        if name == PRODUCTION and repo.active_rollout(self.session, agent.id) is not None:
            raise ConflictError("a rollout is running on this agent; abort it to roll back")
        # No eval gate on the way back: a rollback answers an incident and must always work.
        return self.apply_move(
            agent, name, to_version, reason, principal.actor, "rollback", "not checked (rollback)"
        )

    def apply_move(
        self, agent: Agent, name: str, version: int, reason: str, actor: str, kind: str, gate: str
    ) -> LabelMoveResult:
        """Move (or create) the label with no permission checks: callers have done them."""
        now = utcnow()
        label = repo.get_label(self.session, agent.id, name)
        previous = label.version if label is not None else None
        if label is None:
            label = PromptLabel(
                org_id=agent.org_id,
                agent_id=agent.id,
                name=name,
                version=version,
                # Production starts protected: moving it is a release decision.
                protected=name == PRODUCTION,
                updated_by=actor,
            )
        label.version = version
        label.updated_by = actor
        label.updated_at = now
        self.session.add(label)
        self.session.add(
            PromptLabelMove(
                org_id=agent.org_id,
                agent_id=agent.id,
                label=name,
                from_version=previous,
                to_version=version,
                kind=kind,
                actor=actor,
                reason=reason,
                at=now,
            )
        )
        record_audit(
            self.session,
            actor=actor,
            action=f"prompt.label.{kind}",
            target=agent_target(agent.id, "label", name),
            org_id=agent.org_id,
            detail={"from": previous, "to": version, "reason": reason, "eval_gate": gate},
        )
        repo.bump_revision(self.session)
        self.session.flush()
        return LabelMoveResult(label=label_public(label), from_version=previous, eval_gate=gate)

    def set_policy(
        self,
        agent: Agent,
        name: str,
        *,
        protected: bool | None,
        require_eval_gate: bool | None,
        reason: str,
        principal: Principal,
    ) -> LabelPublic:
        principal.require(RELEASE, agent.org_id)
        label = repo.get_label(self.session, agent.id, name)
        if label is None:
            raise NotFoundError(f"agent '{agent.id}' has no label '{name}'; move it first")
        before = {"protected": label.protected, "require_eval_gate": label.require_eval_gate}
        if protected is not None:
            label.protected = protected
        if require_eval_gate is not None:
            label.require_eval_gate = require_eval_gate
        label.updated_by = principal.actor
        label.updated_at = utcnow()
        self.session.add(label)
        record_audit(
            self.session,
            actor=principal.actor,
            action="prompt.label.policy",
            target=agent_target(agent.id, "label", name),
            org_id=agent.org_id,
            detail={
                "before": before,
                "after": {
                    "protected": label.protected,
                    "require_eval_gate": label.require_eval_gate,
                },
                "reason": reason,
            },
        )
        return label_public(label)

    # -- experiments ---------------------------------------------------------------------
    def create_experiment(
        self, agent: Agent, data: ExperimentCreate, principal: Principal
    ) -> ExperimentPublic:
        principal.require(RELEASE, agent.org_id)
        if repo.running_experiment(self.session, agent.id) is not None:
            raise ConflictError("this agent already runs an experiment; stop it first")
        control = data.control_version
        if control is None:
            production = repo.get_label(self.session, agent.id, PRODUCTION)
            if production is None:
                raise InvalidInputError(
                    "no version is labelled production; label one or give control_version"
                )
            control = production.version
        self.require_version(agent.id, control)
        for variant in data.variants:
            self.require_version(agent.id, variant.version)
            if variant.version == control:
                raise InvalidInputError(f"v{control} is the control; a variant must differ")
        total = sum(v.weight for v in data.variants)
        if total >= 1:
            raise InvalidInputError("variant weights must leave control some traffic (sum < 1)")
        row = PromptExperiment(
            org_id=agent.org_id,
            agent_id=agent.id,
            name=data.name,
            kind="ab",
            control_version=control,
            variants=[
                *({"version": v.version, "weight": v.weight} for v in data.variants),
                {"version": control, "weight": round(1 - total, 12)},
            ],
            created_by=principal.actor,
            reason=data.reason,
        )
        self.session.add(row)
        self.session.flush()
        record_audit(
            self.session,
            actor=principal.actor,
            action="prompt.experiment.start",
            target=agent_target(agent.id, "experiment", row.id),
            org_id=agent.org_id,
            detail={"variants": row.variants, "reason": data.reason},
        )
        repo.bump_revision(self.session)
        return experiment_public(row)

    def require_experiment(self, agent: Agent, experiment_id: int) -> PromptExperiment:
        row = repo.get_experiment(self.session, experiment_id)
        if row is None or row.agent_id != agent.id:
            raise NotFoundError(f"agent '{agent.id}' has no experiment {experiment_id}")
        return row

    def stop_experiment(
        self, agent: Agent, experiment_id: int, reason: str, principal: Principal
    ) -> ExperimentPublic:
        principal.require(RELEASE, agent.org_id)
        row = self.require_experiment(agent, experiment_id)
        if row.kind == "rollout":
            raise ConflictError("this experiment belongs to a rollout; abort the rollout instead")
        if row.status != "running":
            raise ConflictError(f"experiment {experiment_id} is already {row.status}")
        row.status = "stopped"
        row.stop_reason = reason
        row.ended_at = utcnow()
        self.session.add(row)
        record_audit(
            self.session,
            actor=principal.actor,
            action="prompt.experiment.stop",
            target=agent_target(agent.id, "experiment", experiment_id),
            org_id=agent.org_id,
            detail={"reason": reason},
        )
        repo.bump_revision(self.session)
        return experiment_public(row)

    def experiment_results(self, agent: Agent, experiment_id: int) -> ExperimentResults:
        row = self.require_experiment(agent, experiment_id)
        versions = [int(v["version"]) for v in row.variants]
        outcomes = [
            o
            for o in load_outcomes(
                self.session, agent.id, [version_ref(v) for v in versions], row.started_at
            )
            if row.ended_at is None or o.created_at <= row.ended_at
        ]
        by_version = split_by_version(outcomes)
        stats = {v: arm_stats(by_version.get(version_ref(v), [])) for v in versions}
        guards: dict[str, Guard] = {g.name: g for g in DEFAULT_GUARDS}
        control_stats = stats[row.control_version]
        results: list[VariantResult] = []
        for variant in row.variants:
            v = int(variant["version"])
            s = stats[v]
            score = s.get("score", ArmStats())
            low, high = mean_ci95(score)
            versus: list[VersusControl] = []
            verdict = "control"
            if v != row.control_version:
                for metric in COMPARED:
                    cmp = compare(
                        s.get(metric, ArmStats()),
                        control_stats.get(metric, ArmStats()),
                        guards[metric],
                    )
                    versus.append(
                        VersusControl(
                            metric=metric,
                            diff=cmp.diff,
                            ci=Interval(low=cmp.ci_low, high=cmp.ci_high),
                            verdict=cmp.verdict,
                        )
                    )
                verdict = versus[0].verdict

            def mean(name: str, stats_of: dict[str, ArmStats] = s) -> float | None:
                arm = stats_of.get(name)
                return arm.mean if arm is not None and arm.n else None

            results.append(
                VariantResult(
                    version=v,
                    ref=version_ref(v),
                    role="control" if v == row.control_version else "variant",
                    weight=float(variant["weight"]),
                    calls=len(by_version.get(version_ref(v), [])),
                    score=mean("score"),
                    score_ci95=Interval(low=low, high=high),
                    task_completion=mean("completion"),
                    transfer_rate=mean("transferred"),
                    tool_failure_rate=mean("tool_failure"),
                    latency_ms=mean("latency_ms"),
                    versus_control=versus,
                    verdict=verdict,
                )
            )
        overall, summary = _overall_verdict(results)
        return ExperimentResults(
            experiment=experiment_public(row), variants=results, verdict=overall, summary=summary
        )

    # -- overview ------------------------------------------------------------------------
    def status(self, agent: Agent) -> PromptStatus:
        labels = self.list_labels(agent.id)
        experiment = repo.running_experiment(self.session, agent.id)
        rollout = repo.active_rollout(self.session, agent.id) or repo.latest_rollout(
            self.session, agent.id
        )
        production = next((lb for lb in labels if lb.name == PRODUCTION), None)
        if experiment is not None:
            served = ServedPlan(
                mode="experiment",
                experiment_id=experiment.id,
                split=[
                    VariantPublic(version=v["version"], weight=v["weight"])
                    for v in experiment.variants
                ],
            )
        elif production is not None:
            served = ServedPlan(mode="label", version=production.version)
        else:
            served = ServedPlan(mode="none")
        latest = repo.latest_version_number(self.session, agent.id)
        return PromptStatus(
            agent_id=agent.id,
            versions=repo.count_versions(self.session, agent.id),
            latest_version=latest or None,
            labels=labels,
            served=served,
            experiment=experiment_public(experiment) if experiment is not None else None,
            rollout=(
                RolloutPublic.model_validate(rollout, from_attributes=True)
                if rollout is not None
                else None
            ),
        )


def _overall_verdict(results: list[VariantResult]) -> tuple[str, str]:
    variants = [r for r in results if r.role == "variant"]
    if not variants or all(r.verdict == "insufficient data" for r in variants):
        return "insufficient data", "not enough scored calls per variant to compare yet"
    worse = [r.ref for r in variants if r.verdict == "worse"]
    better = [r.ref for r in variants if r.verdict == "better"]
    guard_harm = [
        f"{r.ref} {c.metric}"
        for r in variants
        for c in r.versus_control[1:]
        if c.verdict == "worse"
    ]
    if better and not worse:
        note = f" (watch: {', '.join(guard_harm)})" if guard_harm else ""
        return "variant wins", f"{', '.join(better)} scores higher than control{note}"
    if worse:
        return "variant loses", f"{', '.join(worse)} scores lower than control"
    return "no difference yet", "no variant differs from control on quality score so far"
