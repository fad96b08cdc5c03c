"""Stored eval runs executed: the bridge between ``core.evals`` (runs and case results in the
database) and :mod:`evals.runner`.

A run stores its suite files; :func:`run_cases` rebuilds the suite from them and lists the
run's cases (selected by tags, with its repeats), so every process (the API running a suite in
process, a worker running one case per activity) sees the same cases in the same order.
:func:`execute_case` runs one case and stores its result (idempotent: a case run again
replaces its row), :func:`finalize` computes the tallies and the verdict against the baseline
from the stored rows, :func:`execute_run` does all of it in process under the suite's
concurrency limit and time cap, polling the run's cancel flag.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.errors import NotFoundError
from core.evals import repository as repo
from core.evals.models import FINISHED_STATUSES, EvalRun
from core.evals.pricing import PriceTable, case_cost
from core.evals.service import EvalService
from core.monitoring.alerts import raise_alert, resolve_subject
from core.tenancy.agent_info import AgentInfo
from evals.runner import (
    CaseResult,
    CaseStatus,
    Ports,
    ScenarioTally,
    run_case,
    run_status,
    run_suite,
    tallies,
    verdict_against,
)
from evals.scenarios import Case, Suite, load_suite

__all__ = [
    "CaseWork",
    "cancel_requested",
    "cases_of",
    "execute_case",
    "execute_run",
    "finalize",
    "prepare",
    "run_cases",
    "suite_from_files",
]

log = logging.getLogger("backline.evals")


def suite_from_files(files: dict[str, str]) -> Suite:
    """Load a suite sent as ``{relative path: text}``; SuiteError (file:line problems, with the
    paths as sent) when it is invalid."""
    with tempfile.TemporaryDirectory(prefix="backline-suite-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        try:
            suite = load_suite(root)
        except Exception as exc:
            problems = getattr(exc, "problems", None)
            if problems is not None:
                for i, p in enumerate(problems):
                    rel_file = p.file.relative_to(root) if p.file.is_relative_to(root) else p.file
                    problems[i] = dataclasses.replace(p, file=rel_file)
                exc.args = (str(type(exc)(problems)),)
            raise
        sources = {name: p.relative_to(root) for name, p in suite.sources.items()}
        return dataclasses.replace(suite, root=Path("."), sources=sources)


def cases_of(suite: Suite, tags: list[str] | None, repeats: int | None) -> tuple[Suite, list[Case]]:
    """The suite (with ``repeats`` overriding its own) and its cases, selected by ``tags``."""
    if repeats is not None:
        config = suite.config.model_copy(update={"repeats": repeats})
        suite = dataclasses.replace(suite, config=config)
    return suite, suite.cases(tags=tags or None)


SUITE_CACHE_SIZE = 16
_suites: OrderedDict[tuple[str, ...], tuple[Suite, list[Case]]] = OrderedDict()
_suites_lock = threading.Lock()


def run_cases(run: EvalRun) -> tuple[Suite, list[Case]]:
    """The run's suite and cases. Rebuilding a suite from its files (a temp folder, the YAML
    parsed, personas applied) costs about 100 ms; a worker asks for it once per case, so the
    last few runs' are kept, keyed by the run and a digest of what it was built from."""
    digest = hashlib.sha256(
        json.dumps([run.files, run.tags, run.repeats], sort_keys=True).encode()
    ).hexdigest()
    key = (run.id, digest)
    with _suites_lock:
        if key in _suites:
            _suites.move_to_end(key)
            return _suites[key]
    built = cases_of(suite_from_files(run.files), run.tags, run.repeats)
    with _suites_lock:
        _suites[key] = built
        while len(_suites) > SUITE_CACHE_SIZE:
            _suites.popitem(last=False)
    return built


def _label(run: EvalRun) -> str | int | None:
    return run.target_version if run.target_version is not None else run.target_label


def price_case(data: dict[str, Any], prices: PriceTable | None) -> dict[str, Any]:
    """``data`` (a case result as JSON) with its LLM cost in ``metrics``: ``cost_usd`` (None:
    unknown) and, when unknown, ``cost_unknown`` saying why."""
    metrics = data.setdefault("metrics", {})
    cost, why = case_cost(metrics, prices)
    metrics["cost_usd"] = cost
    if cost is None:
        metrics["cost_unknown"] = why
    return data


async def execute_case(
    engine: Engine,
    run_id: str,
    index: int,
    agent: AgentInfo,
    ports: Ports,
    prices: PriceTable | None = None,
) -> dict[str, Any]:
    """Run case ``index`` of a stored run and store its result, priced with ``prices``; the
    result as JSON. A run whose cancellation was requested records the case as skipped
    without playing it."""
    # Off the event loop: the other cases' conversations share it.
    suite, cases, cancelled, label = await asyncio.to_thread(_case_run, engine, run_id)
    case = cases[index]
    if cancelled:
        result = CaseResult(
            scenario=case.scenario.name,
            persona=case.persona.name if case.persona is not None else None,
            repeat=case.repeat,
            call_id="",
            status=CaseStatus.SKIPPED,
            reason="skipped: the run was cancelled",
        )
    else:
        result = await run_case(suite, case, agent, ports, run_id=run_id, index=index, label=label)
    data = price_case(result.to_json(), prices)
    await asyncio.to_thread(_record, engine, run_id, index, data)
    return data


def _case_run(engine: Engine, run_id: str) -> tuple[Suite, list[Case], bool, str | int | None]:
    with Session(engine) as session:
        run = EvalService(session).require_run(run_id)
        suite, cases = run_cases(run)
        return suite, cases, run.cancel_requested, _label(run)


def _record(engine: Engine, run_id: str, index: int, data: dict[str, Any]) -> None:
    with Session(engine) as session:
        EvalService(session).record_case(run_id, index, data)
        session.commit()


def _stored_results(session: Session, run_id: str) -> list[CaseResult]:
    return [
        CaseResult(
            scenario=row.scenario,
            persona=row.persona,
            repeat=row.repeat,
            call_id="",
            status=CaseStatus(row.status),
            reason=row.reason or "",
        )
        for row in repo.case_results(session, run_id)
    ]


def _baseline(session: Session, run: EvalRun) -> list[ScenarioTally] | None:
    if run.baseline_run_id is None:
        return None
    base = repo.get_run(session, run.baseline_run_id)
    if base is None:
        return None
    return [
        ScenarioTally(
            key=row["key"],
            scenario=row["scenario"],
            persona=row.get("persona"),
            passed=int(row["passed"]),
            runs=int(row["runs"]),
            skipped=int(row.get("skipped", 0)),
        )
        for row in base.scenarios
    ]


def prepare(engine: Engine, run_id: str) -> dict[str, Any]:
    """Mark a run running; its size, limits (time and cost caps, with the cost already spent
    by stored cases) and the case indexes still without a result."""
    with Session(engine) as session:
        service = EvalService(session)
        run = service.start(run_id)
        session.commit()
        session.refresh(run)
        if run.status != "running":
            return {
                "total": run.total,
                "concurrency": 1,
                "time_cap_s": None,
                "pending": [],
                "cancelled": True,
            }
        suite, cases = run_cases(run)
        stored = {r.case_index for r in repo.case_results(session, run_id)}
        return {
            "total": len(cases),
            "concurrency": suite.config.concurrency,
            "time_cap_s": suite.config.time_cap,
            "pending": [i for i in range(len(cases)) if i not in stored],
            "cancelled": run.cancel_requested,
            "cost_cap_usd": run.cost_cap_usd,
            "spent_usd": run.cost_usd,
        }


def create_scheduled_run(engine: Engine, agent_id: str, suite_name: str, label: str) -> str:
    """Store a queued run of the agent's registered suite ``suite_name`` on ``label`` (what a
    nightly schedule starts); its id. Compared with the suite's accepted baseline as usual."""
    with Session(engine) as session:
        stored = repo.get_suite(session, agent_id, suite_name)
        if stored is None:
            raise NotFoundError(f"agent '{agent_id}' has no registered eval suite '{suite_name}'")
        suite, cases = cases_of(suite_from_files(stored.files), None, None)
        run = EvalService(session).create_run(
            stored.org_id,
            agent_id,
            suite.config.name,
            stored.files,
            len(cases),
            label=label,
        )
        session.commit()
        return run.id


def cancel_requested(engine: Engine, run_id: str) -> bool:
    return _cancel_requested(engine, run_id)


def finalize(
    engine: Engine,
    run_id: str,
    *,
    cancelled: bool = False,
    error: str | None = None,
    not_run_reason: str | None = None,
    stop_reason: str | None = None,
) -> EvalRun:
    """Tallies per scenario x persona from the stored cases, the verdict against the baseline,
    and the run's final status (``cancelled`` / ``error`` win over the verdict). Cases left
    without a result are recorded first: skipped with ``not_run_reason``, else as errors. A
    run some of whose cases did not run (``stop_reason``: a cap was reached) is never
    ``passed``: at best ``inconclusive``."""
    with Session(engine) as session:
        service = EvalService(session)
        run = service.require_run(run_id)
        if run.status in FINISHED_STATUSES:
            return run
        not_run = 0 if error is not None else _fill_missing(session, run, not_run_reason)
        results = _stored_results(session, run_id)
        mine = tallies(results)
        baseline = _baseline(session, run)
        verdict = verdict_against(mine, baseline)
        by_key = {s.scenario: s for s in verdict.scenarios}
        rows = []
        for t in mine:
            v = by_key.get(t.key)
            rows.append(
                {
                    "key": t.key,
                    "scenario": t.scenario,
                    "persona": t.persona,
                    "passed": t.passed,
                    "runs": t.runs,
                    "skipped": t.skipped,
                    "verdict": str(v.verdict) if v is not None else None,
                    "reason": v.reason if v is not None else "every run was skipped",
                    "flaky": v.flaky if v is not None else False,
                }
            )
        if error is not None:
            status = "error"
        elif cancelled:
            status = "cancelled"
        else:
            status = run_status(results, verdict, baseline is not None)
        verdict_name = str(verdict.verdict)
        if not_run and status == "passed":
            status = verdict_name = "inconclusive"
        run = service.finish(
            run_id,
            status,
            verdict_name,
            rows,
            error,
            stop_reason=stop_reason,
        )
        _alert_on_regression(session, run, rows)
        session.commit()
        session.refresh(run)
        return run


EVAL_REGRESSED = "eval_regressed"


def eval_subject(run: EvalRun) -> str:
    return f"eval_suite:{run.agent_id}:{run.suite_name}"


def _alert_on_regression(session: Session, run: EvalRun, rows: list[dict[str, Any]]) -> None:
    """A regressed run raises an alert (through the agent's alert rules, like every source);
    a later passing run of the same suite resolves it."""
    target = f"version {run.target_version}" if run.target_version else run.target_label
    if run.status == "regressed":
        regressed = [r["key"] for r in rows if r["verdict"] == "regressed"]
        raise_alert(
            session,
            org_id=run.org_id,
            agent_id=run.agent_id,
            kind=EVAL_REGRESSED,
            message=(
                f"Eval suite '{run.suite_name}' regressed on {target or 'the served prompt'}: "
                f"{len(regressed)} scenario(s) pass less often than the baseline"
            ),
            detail={"run_id": run.id, "scenarios": regressed[:50]},
            subject=eval_subject(run),
        )
    elif run.status == "passed":
        resolve_subject(
            session,
            subject=eval_subject(run),
            kinds=(EVAL_REGRESSED,),
            resolution=f"eval run {run.id} passed",
        )


def _fill_missing(session: Session, run: EvalRun, reason: str | None) -> int:
    """Record every case without a result; how many there were."""
    stored = {r.case_index for r in repo.case_results(session, run.id)}
    try:
        _, cases = run_cases(run)
    except Exception:
        return 0
    service = EvalService(session)
    filled = 0
    for i, case in enumerate(cases):
        if i in stored:
            continue
        filled += 1
        service.record_case(
            run.id,
            i,
            {
                "scenario": case.scenario.name,
                "persona": case.persona.name if case.persona is not None else None,
                "repeat": case.repeat,
                "status": "skipped" if reason else "error",
                "reason": reason or "error: the case could not be run (its attempts failed)",
            },
        )
    session.flush()
    return filled


def _cancel_requested(engine: Engine, run_id: str) -> bool:
    with Session(engine) as session:
        run = repo.get_run(session, run_id)
        return run is None or run.cancel_requested


async def execute_run(
    engine: Engine,
    run_id: str,
    agent: AgentInfo,
    ports: Ports | None,
    *,
    poll_s: float = 0.5,
    on_case: Callable[[int], None] | None = None,
    prices: PriceTable | None = None,
) -> EvalRun:
    """Run every case of a stored run in this process and finish it. ``ports`` None (no agent
    runtime here) finishes the run as ``error`` with the reason. Cases are priced with
    ``prices``; once the run's cost reaches its cap, the cases not yet finished are not run
    (in process, those under way are abandoned too)."""
    if ports is None:
        return await asyncio.to_thread(
            finalize, engine, run_id, error="no agent runtime is available to run evals"
        )
    with Session(engine) as session:
        run = EvalService(session).start(run_id)
        session.commit()
        session.refresh(run)
        if run.status != "running":
            return run
        try:
            suite, cases = run_cases(run)
        except Exception as exc:
            session.rollback()
            return await asyncio.to_thread(finalize, engine, run_id, error=str(exc))
        label = _label(run)
        cap = run.cost_cap_usd
    cancel = asyncio.Event()
    by_user = asyncio.Event()
    spent, stored = [0.0], [0]

    async def watch() -> None:
        while not cancel.is_set():
            await asyncio.sleep(poll_s)
            if await asyncio.to_thread(_cancel_requested, engine, run_id):
                by_user.set()
                cancel.set()

    async def store(index: int, result: CaseResult) -> None:
        if cancel.is_set() and not by_user.is_set() and result.reason == CANCELLED_SKIP:
            return  # stopped by the cost cap: recorded as not run when the run is finalized
        data = price_case(result.to_json(), prices)
        await asyncio.to_thread(_record, engine, run_id, index, data)
        stored[0] += 1
        spent[0] += data["metrics"]["cost_usd"] or 0.0
        if cap is not None and spent[0] >= cap:
            cancel.set()
        if on_case is not None:
            on_case(index)

    watcher = asyncio.ensure_future(watch())
    try:
        await run_suite(
            suite,
            agent,
            ports,
            run_id=run_id,
            cases=cases,
            label=label,
            cancel=cancel,
            on_result=store,
        )
    except Exception as exc:
        log.exception("eval run %s failed", run_id)
        return await asyncio.to_thread(finalize, engine, run_id, error=str(exc))
    finally:
        watcher.cancel()
    capped = cancel.is_set() and not by_user.is_set()
    return await asyncio.to_thread(
        functools.partial(
            finalize,
            engine,
            run_id,
            cancelled=by_user.is_set(),
            not_run_reason=cost_cap_not_run(cap) if capped else None,
            stop_reason=cost_cap_stop(cap, stored[0], len(cases)) if capped else None,
        )
    )


CANCELLED_SKIP = "skipped: the run was cancelled"


def cost_cap_not_run(cap: float | None) -> str:
    return f"not run: the run's cost cap ({cap or 0:.2f} USD) was reached"


def cost_cap_stop(cap: float | None, done: int, total: int) -> str:
    return f"stopped: cost cap {cap or 0:.2f} USD reached after {done} of {total} scenario runs"


NO_RUNTIME = "error: no agent runtime is available to run evals"


@dataclasses.dataclass(frozen=True)
class CaseWork:
    """The eval activities' work as plain callables (``activities.evals.EvalActivities``):
    ``ports_for`` None, or answering None, records every case as an error (no runtime)."""

    engine: Engine
    agents: Callable[[str], AgentInfo | None]
    ports_for: Callable[[AgentInfo], Ports | None] | None = None
    prices: PriceTable | None = None

    def prepare(self, run_id: str) -> dict[str, Any]:
        return prepare(self.engine, run_id)

    def create_scheduled(self, agent_id: str, suite_name: str, label: str) -> str:
        return create_scheduled_run(self.engine, agent_id, suite_name, label)

    async def run_case(self, run_id: str, index: int) -> dict[str, Any]:
        agent_id, agent = await asyncio.to_thread(self._agent_of, run_id)
        ports = self.ports_for(agent) if agent is not None and self.ports_for else None
        if agent is None or ports is None:
            with Session(self.engine) as session:
                run = EvalService(session).require_run(run_id)
                _, cases = run_cases(run)
            case = cases[index]
            data = CaseResult(
                scenario=case.scenario.name,
                persona=case.persona.name if case.persona is not None else None,
                repeat=case.repeat,
                call_id="",
                status=CaseStatus.ERROR,
                reason=NO_RUNTIME if agent is not None else f"error: no agent '{agent_id}'",
            ).to_json()
            await asyncio.to_thread(_record, self.engine, run_id, index, data)
            return data
        return await execute_case(self.engine, run_id, index, agent, ports, self.prices)

    def _agent_of(self, run_id: str) -> tuple[str, AgentInfo | None]:
        with Session(self.engine) as session:
            agent_id = EvalService(session).require_run(run_id).agent_id
        return agent_id, self.agents(agent_id)

    def cancel_requested(self, run_id: str) -> bool:
        return _cancel_requested(self.engine, run_id)

    def finalize(
        self,
        run_id: str,
        cancelled: bool,
        not_run_reason: str | None,
        stop_reason: str | None = None,
    ) -> dict[str, Any]:
        run = finalize(
            self.engine,
            run_id,
            cancelled=cancelled,
            not_run_reason=not_run_reason,
            stop_reason=stop_reason,
        )
        return {"status": run.status, "verdict": run.verdict, "done": run.done, "total": run.total}
