"""The eval runner: plays a suite's cases (scenario x persona x repeat) against an agent through
the agent runtime, checks every expectation, and aggregates the results into per-scenario
tallies and a verdict against a baseline.

One case (:func:`run_case`): seed the caller's earlier calls into memory (``PriorCallSeeder``),
open a call ``eval-<run>-<case>``, say the opening and each scripted caller line (already
rewritten by the persona) through ``Conversation.respond``, stop after ``max_turns`` agent turns
when the scenario sets it, then check. A simulated caller needs an LLM (``SimulatedCaller``,
``evals/simulator.py``): it speaks one line per turn until it ends the call (its goal met:
the ``caller finished`` check) or ``simulated.max_turns`` run out; without one the case is
*skipped*, never passed. With an LLM judge (``evals/judge.py``) a case also records the judge's
conversational rubrics in ``metrics["judged"]``; without one, each of them is recorded
there as skipped, with the reason.

Every check is a :class:`Check` in one of four layers (infrastructure: the call ran, latencies,
fallbacks, tool errors; execution: the tools called and not called, transfer, turn count;
reaction: what the agent said, numbers from knowledge, grounding, rubric; outcome: the business
result read back from a sandbox tool server). ``passed`` is None for a skipped check. A case
passes iff no check failed.

A suite (:func:`run_suite`) runs its cases under a concurrency limit, a time cap and a cancel
flag; cases not run are reported as skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from core.calls.events import Turn as CallTurn
from core.tenancy.agent_info import AgentInfo
from evals.grounding import normalize_numbers, ungrounded
from evals.judge import skipped_metrics
from evals.ports import (
    AgentRuntime,
    CallTarget,
    OutcomeChecker,
    PriorCallSeeder,
    RubricJudge,
    SimulatedCaller,
    TurnResult,
)
from evals.scenarios import Case, Expect, SandboxServer, Suite, phrase_matches
from evals.verdict import SuiteVerdict, Tally, Verdict, compare, suite_verdict

__all__ = [
    "NO_LLM_SIMULATED",
    "CaseResult",
    "CaseStatus",
    "Check",
    "Layer",
    "Ports",
    "ScenarioTally",
    "case_id",
    "case_key",
    "check_case",
    "run_case",
    "run_suite",
    "tallies",
    "verdict_against",
]

NO_LLM_SIMULATED = "skipped: simulated caller needs an LLM (set BACKLINE_LLM_BASE_URL)"
NO_LLM_RUBRIC = "skipped: the rubric needs an LLM judge (set BACKLINE_LLM_BASE_URL)"
NO_LLM_JUDGED = "skipped: the judged metrics need an LLM judge (set BACKLINE_LLM_BASE_URL)"
NO_OUTCOME_CHECKER = "skipped: no sandbox tool client to read the outcome with"
TRANSFER_TOOL = re.compile(r"transfer", re.IGNORECASE)
"""A tool call whose name contains "transfer" is the agent transferring the call."""


class Layer(StrEnum):
    INFRASTRUCTURE = "infrastructure"
    EXECUTION = "execution"
    REACTION = "reaction"
    OUTCOME = "outcome"


class CaseStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class Check:
    name: str
    layer: Layer
    passed: bool | None
    """None: skipped (detail says why)."""
    detail: str = ""


@dataclass
class CaseResult:
    scenario: str
    persona: str | None
    repeat: int
    call_id: str
    status: CaseStatus
    checks: list[Check] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    """Per agent turn: tool calls, retrievals, model, latencies."""
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status is CaseStatus.PASSED

    @property
    def counted(self) -> bool:
        """Does the case count as a run in the tallies (skipped ones do not)?"""
        return self.status is not CaseStatus.SKIPPED

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = str(self.status)
        out["checks"] = [{**asdict(c), "layer": str(c.layer)} for c in self.checks]
        return out


@dataclass(frozen=True)
class Ports:
    """The adapters a run uses; any left None skips what needs it."""

    runtime: AgentRuntime
    seeder: PriorCallSeeder | None = None
    outcomes: OutcomeChecker | None = None
    judge: RubricJudge | None = None
    simulator: SimulatedCaller | None = None


def case_key(case: Case) -> str:
    """``scenario`` or ``scenario [persona]``: what tallies and verdicts are keyed by."""
    name = case.scenario.name
    return f"{name} [{case.persona.name}]" if case.persona is not None else name


def case_id(case: Case, index: int) -> str:
    """A short id of a case within a run: its index in ``Suite.cases()``."""
    return f"{index:04d}-r{case.repeat}"


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _trace(result: TurnResult) -> dict[str, Any]:
    return {
        "text": result.text,
        "tool_calls": [
            {
                "name": c.name,
                "arguments": _jsonable(c.arguments),
                "result": _jsonable(c.result),
                "error": c.error,
                "latency_ms": c.latency_ms,
                "source": c.source,
            }
            for c in result.tool_calls
        ],
        "retrievals": [
            {
                "query": r.query,
                "status": r.status,
                "chunk_ids": list(r.chunk_ids),
                "texts": list(r.texts),
            }
            for r in result.retrievals
        ],
        "model": result.model,
        "ttft_ms": result.ttft_ms,
        "upstream_ms": result.upstream_ms,
        "backline_ms": result.backline_ms,
        "fallback_used": result.fallback_used,
    }


def _target(suite: Suite, case: Case, call_id: str, label: str | int | None) -> CallTarget:
    chosen = suite.target_for(case.scenario) if label is None else label
    variables = {"prompt_version": str(chosen)} if isinstance(chosen, int) else {}
    return CallTarget(
        call_id=call_id,
        platform="eval",
        caller_number=case.scenario.caller.number,
        label=chosen if isinstance(chosen, str) else None,
        version=chosen if isinstance(chosen, int) else None,
        call_variables=variables,
    )


async def run_case(
    suite: Suite,
    case: Case,
    agent: AgentInfo,
    ports: Ports,
    *,
    run_id: str,
    index: int,
    label: str | int | None = None,
) -> CaseResult:
    """Play one case and check it. Never raises for the agent's failures: a runtime error is a
    failed infrastructure check (status ``error``)."""
    started = time.monotonic()
    scenario = case.scenario
    call_id = f"eval-{run_id}-{case_id(case, index)}"
    result = CaseResult(
        scenario=scenario.name,
        persona=case.persona.name if case.persona is not None else None,
        repeat=case.repeat,
        call_id=call_id,
        status=CaseStatus.PASSED,
    )
    if scenario.simulated is not None and ports.simulator is None:
        result.status, result.reason = CaseStatus.SKIPPED, NO_LLM_SIMULATED
        return result

    transcript: list[CallTurn] = []
    traces: list[TurnResult] = []
    limit = scenario.expect.max_turns
    cut_short: str | None = None  # why the conversation was stopped at max_turns
    hung_up: bool | None = None  # a simulated caller: did it end the call (its goal met)?
    try:
        if scenario.caller.prior_calls:
            if ports.seeder is None:
                raise RuntimeError("no memory seeder: cannot seed the scenario's prior calls")
            await ports.seeder.seed_prior_calls(
                agent,
                scenario.caller.number,
                [
                    [CallTurn(role=t.role, text=t.text) for t in prior.turns]
                    for prior in scenario.caller.prior_calls
                ],
            )
        conversation = await ports.runtime.open_call(agent, _target(suite, case, call_id, label))
        if conversation.opening:
            transcript.append(CallTurn(role="agent", text=conversation.opening))

        async def say(line: str | None) -> None:
            if line is not None:
                transcript.append(CallTurn(role="caller", text=line))
            reply = await conversation.respond(line)
            traces.append(reply)
            transcript.append(CallTurn(role="agent", text=reply.text))

        def done() -> bool:
            return limit is not None and len(traces) >= limit

        if scenario.simulated is not None:
            assert ports.simulator is not None
            persona = case.persona.description if case.persona is not None else None
            hung_up = False
            for _ in range(scenario.simulated.max_turns):
                line = await ports.simulator.next_line(
                    scenario.simulated.goal, persona, list(transcript)
                )
                if line is None:
                    hung_up = True
                    break
                if done():
                    cut_short = "the caller still had more to say"
                    break
                await say(line)
        else:
            lines = [case.opening] if case.opening is not None else []
            script = [*lines, *(case.caller_turns or [])]
            for i, line in enumerate(script):
                if done():
                    cut_short = f"{len(script) - i} scripted caller line(s) were left"
                    break
                await say(line)
        transcript = list(conversation.transcript()) or transcript
    except Exception as exc:
        result.checks.append(Check("conversation", Layer.INFRASTRUCTURE, False, describe(exc)))
        result.status = CaseStatus.ERROR
        result.reason = "".join(traceback.format_exception_only(exc)).strip()
    else:
        result.checks.append(Check("conversation", Layer.INFRASTRUCTURE, True, ""))
        if hung_up is not None and scenario.simulated is not None:
            turns = scenario.simulated.max_turns
            result.checks.append(
                Check(
                    "caller finished",
                    Layer.EXECUTION,
                    hung_up,
                    "" if hung_up else f"the caller still pursued its goal after {turns} turns",
                )
            )
        memory = [t.text for prior in scenario.caller.prior_calls for t in prior.turns]
        result.checks += await check_case(
            scenario.expect, transcript, traces, ports, memory, suite.config.tools.sandbox
        )
        if cut_short is not None:
            result.checks = [
                Check(c.name, c.layer, False, f"{c.detail}; stopped there: {cut_short}")
                if c.name == f"within {limit} turns"
                else c
                for c in result.checks
            ]
        if any(c.passed is False for c in result.checks):
            result.status = CaseStatus.FAILED
    result.transcript = [t.model_dump(mode="json") for t in transcript]
    result.trace = [_trace(t) for t in traces]
    result.metrics = _metrics(traces)
    conversational = getattr(ports.judge, "metrics", None)
    if conversational is not None and result.status is not CaseStatus.ERROR:
        # The judge's conversational rubrics (completeness, retention, role): recorded, not
        # checked, so a case's pass/fail stays what its scenario expects.
        try:
            result.metrics["judged"] = await conversational(list(transcript))
        except Exception as exc:
            result.metrics["judged"] = {"error": describe(exc)}
    elif ports.judge is None and result.status is not CaseStatus.ERROR:
        result.metrics["judged"] = skipped_metrics(NO_LLM_JUDGED)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def describe(exc: BaseException) -> str:
    """``Type: message`` of the error, unwrapping task-group wrappers down to the cause."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _metrics(traces: Sequence[TurnResult]) -> dict[str, Any]:
    def values(name: str) -> list[float]:
        return [float(v) for t in traces if (v := getattr(t, name)) is not None]

    def p50(xs: list[float]) -> float | None:
        return sorted(xs)[len(xs) // 2] if xs else None

    calls = [c for t in traces for c in t.tool_calls]
    upstream, backline, ttft = values("upstream_ms"), values("backline_ms"), values("ttft_ms")
    return {
        **usage_metrics(traces),
        "agent_turns": len(traces),
        "upstream_ms_p50": p50(upstream),
        "upstream_ms_max": max(upstream, default=None),
        "backline_ms_p50": p50(backline),
        "backline_ms_max": max(backline, default=None),
        "ttft_ms_p50": p50(ttft),
        "fallbacks": sum(1 for t in traces if t.fallback_used),
        "tool_calls": len(calls),
        "tool_errors": sum(1 for c in calls if c.error),
    }


def usage_metrics(traces: Sequence[TurnResult]) -> dict[str, Any]:
    """The case's LLM token usage: totals, per model ``[prompt, completion]`` (what pricing
    needs) and how many turns' model calls came back without usage (their cost is unknown)."""
    by_model: dict[str, list[int]] = {}
    unknown = 0
    for t in traces:
        usage = t.usage if isinstance(t.usage, Mapping) else None
        if usage is None or not getattr(t, "usage_reported", True):
            unknown += 1
        if usage is None:
            continue
        row = by_model.setdefault(t.model or "", [0, 0])
        row[0] += int(usage.get("prompt_tokens") or 0)
        row[1] += int(usage.get("completion_tokens") or 0)
    return {
        "prompt_tokens": sum(r[0] for r in by_model.values()),
        "completion_tokens": sum(r[1] for r in by_model.values()),
        "tokens_by_model": by_model,
        "usage_unknown_turns": unknown,
    }


def _said(phrase: str, agent_texts: list[str]) -> bool:
    return any(phrase_matches(phrase, text) for text in agent_texts)


def _number_in(number: str, text: str) -> bool:
    pattern = rf"(?<![\d.]){re.escape(number)}(?!\d|\.\d)"
    return re.search(pattern, normalize_numbers(text)) is not None


async def check_case(
    expect: Expect,
    transcript: list[CallTurn],
    traces: Sequence[TurnResult],
    ports: Ports,
    memory: Sequence[str] = (),
    sandbox: Mapping[str, SandboxServer] | None = None,
) -> list[Check]:
    """Every expectation of ``expect`` against one finished conversation (``memory``: the texts
    of the caller's earlier calls, a source for grounding like knowledge and tool results)."""
    checks: list[Check] = []
    agent_texts = [t.text for t in transcript if t.role == "agent"]
    calls = [c for t in traces for c in t.tool_calls]
    called = [(c.name, c.arguments if isinstance(c.arguments, dict) else {}) for c in calls]
    retrieved = [text for t in traces for r in t.retrievals for text in r.texts]

    for tool_error in (c for c in calls if c.error):
        checks.append(
            Check(f"tool {tool_error.name} ran", Layer.INFRASTRUCTURE, None, tool_error.error or "")
        )
    for want in expect.tools_called:
        ok = any(want.matches(name, args) for name, args in called)
        same = [json.dumps(args, default=str) for name, args in called if name == want.name]
        detail = (
            ""
            if ok
            else (f"called with {'; '.join(same)}" if same else f"{want.name} was not called")
        )
        checks.append(Check(f"called {want.name}", Layer.EXECUTION, ok, detail))
    for name in expect.tools_not_called:
        times = sum(1 for n, _ in called if n == name)
        checks.append(
            Check(
                f"did not call {name}",
                Layer.EXECUTION,
                times == 0,
                f"called {times} time(s)" if times else "",
            )
        )
    if expect.transfer is not None:
        transferred = any(TRANSFER_TOOL.search(n) for n, _ in called)
        checks.append(
            Check(
                "transferred" if expect.transfer else "did not transfer",
                Layer.EXECUTION,
                transferred == expect.transfer,
                "" if transferred == expect.transfer else f"transferred: {transferred}",
            )
        )
    if expect.max_turns is not None:
        turns = len(traces)
        finished = turns <= expect.max_turns
        checks.append(
            Check(
                f"within {expect.max_turns} turns",
                Layer.EXECUTION,
                finished,
                f"{turns} agent turns",
            )
        )
    for phrase in expect.must_say:
        ok = _said(phrase, agent_texts)
        checks.append(Check(f"says {phrase}", Layer.REACTION, ok, "" if ok else "never said"))
    for phrase in expect.must_not_say:
        hits = [t for t in agent_texts if phrase_matches(phrase, t)]
        checks.append(
            Check(
                f"does not say {phrase}",
                Layer.REACTION,
                not hits,
                f"said: {hits[0]!r}" if hits else "",
            )
        )
    for number in expect.numbers_from_knowledge:
        said = any(_number_in(number, t) for t in agent_texts)
        known = any(_number_in(number, t) for t in retrieved)
        problem = [] if said else ["the agent did not say it"]
        problem += [] if known else ["it is not in the knowledge retrieved"]
        checks.append(
            Check(
                f"number {number} from knowledge",
                Layer.REACTION,
                said and known,
                "; ".join(problem),
            )
        )
    if expect.grounded is not None:
        sources = [
            *retrieved,
            *(json.dumps(_jsonable(c.result), default=str) for c in calls),
            *(t.text for t in transcript if t.role == "caller"),
            *memory,
        ]
        missing = ungrounded(agent_texts, sources)
        ok = not missing if expect.grounded else bool(missing)
        checks.append(
            Check(
                "grounded" if expect.grounded else "not grounded",
                Layer.REACTION,
                ok,
                f"not found in knowledge, tool results or memory: {', '.join(missing)}"
                if missing
                else "",
            )
        )
    if expect.rubric is not None:
        if ports.judge is None:
            checks.append(Check("rubric", Layer.REACTION, None, NO_LLM_RUBRIC))
        else:
            judged, reason = await ports.judge.judge(expect.rubric, transcript)
            checks.append(Check("rubric", Layer.REACTION, judged, reason))
    if expect.outcome is not None:
        outcome = expect.outcome
        name = f"outcome {outcome.tool}"
        if ports.outcomes is None:
            checks.append(Check(name, Layer.OUTCOME, None, NO_OUTCOME_CHECKER))
        else:
            try:
                server = (sandbox or {}).get(outcome.server) if outcome.server else None
                found = await ports.outcomes.call(outcome, server)
                ok = outcome.matches(found)
                detail = "" if ok else f"no matching record in {json.dumps(found, default=str)}"
                checks.append(Check(name, Layer.OUTCOME, ok, detail[:500]))
            except Exception as exc:
                checks.append(Check(name, Layer.OUTCOME, False, describe(exc)))
    return checks


@dataclass(frozen=True)
class ScenarioTally:
    key: str
    scenario: str
    persona: str | None
    passed: int
    runs: int
    skipped: int

    @property
    def tally(self) -> Tally:
        return Tally(self.passed, self.runs)


def tallies(results: Iterable[CaseResult]) -> list[ScenarioTally]:
    """Pass counts per scenario x persona, in first-seen order; skipped cases are not runs."""
    order: dict[tuple[str, str | None], list[CaseResult]] = {}
    for r in results:
        order.setdefault((r.scenario, r.persona), []).append(r)
    out = []
    for (scenario, persona), rs in order.items():
        counted = [r for r in rs if r.counted]
        out.append(
            ScenarioTally(
                key=f"{scenario} [{persona}]" if persona else scenario,
                scenario=scenario,
                persona=persona,
                passed=sum(r.passed for r in counted),
                runs=len(counted),
                skipped=len(rs) - len(counted),
            )
        )
    return out


def verdict_against(
    candidate: Sequence[ScenarioTally], baseline: Sequence[ScenarioTally] | None
) -> SuiteVerdict:
    """Each candidate scenario x persona compared with the baseline's (a scenario the baseline
    lacks, or no baseline at all, has zero baseline runs: inconclusive)."""
    base = {t.key: t.tally for t in baseline or ()}
    return suite_verdict(
        compare(t.key, t.tally, base.get(t.key, Tally(0, 0))) for t in candidate if t.runs
    )


async def run_suite(
    suite: Suite,
    agent: AgentInfo,
    ports: Ports,
    *,
    run_id: str,
    cases: Sequence[Case] | None = None,
    label: str | int | None = None,
    concurrency: int | None = None,
    time_cap: float | None = None,
    cancel: asyncio.Event | None = None,
    on_result: Callable[[int, CaseResult], Awaitable[None] | None] | None = None,
) -> list[CaseResult]:
    """Every case (default: all of ``suite.cases()``), at most ``concurrency`` at once (default
    the suite's), until done, ``time_cap`` seconds pass (default the suite's) or ``cancel`` is
    set. Results come back in case order; a case not run is skipped with the reason."""
    chosen = list(suite.cases() if cases is None else cases)
    limit = asyncio.Semaphore(concurrency or suite.config.concurrency)
    cap = time_cap if time_cap is not None else suite.config.time_cap
    deadline = None if cap is None else time.monotonic() + cap
    stop = cancel or asyncio.Event()
    results: list[CaseResult | None] = [None] * len(chosen)

    def not_run(i: int, why: str) -> CaseResult:
        case = chosen[i]
        return CaseResult(
            scenario=case.scenario.name,
            persona=case.persona.name if case.persona is not None else None,
            repeat=case.repeat,
            call_id=f"eval-{run_id}-{case_id(case, i)}",
            status=CaseStatus.SKIPPED,
            reason=why,
        )

    def why_stopped() -> str | None:
        if stop.is_set():
            return "skipped: the run was cancelled"
        if deadline is not None and time.monotonic() >= deadline:
            return f"skipped: the time cap ({cap:g}s) was reached"
        return None

    async def one(i: int) -> None:
        async with limit:
            reason = why_stopped()
            if reason is not None:
                result = not_run(i, reason)
            else:
                result = await play(i)
        results[i] = result
        if on_result is not None:
            done = on_result(i, result)
            if done is not None:
                await done

    async def play(i: int) -> CaseResult:
        task = asyncio.ensure_future(
            run_case(suite, chosen[i], agent, ports, run_id=run_id, index=i, label=label)
        )
        stopper = asyncio.ensure_future(stop.wait())
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        await asyncio.wait({task, stopper}, timeout=timeout, return_when="FIRST_COMPLETED")
        stopper.cancel()
        if task.done():
            return task.result()
        task.cancel()
        return not_run(i, why_stopped() or "skipped: stopped")

    await asyncio.gather(*(one(i) for i in range(len(chosen))))
    return [r for r in results if r is not None]


def scenario_verdict_rows(verdict: SuiteVerdict) -> list[dict[str, Any]]:
    """The verdict's scenarios as plain rows for storage and reports."""
    return [
        {
            "scenario": s.scenario,
            "verdict": str(s.verdict),
            "candidate": [s.candidate.passed, s.candidate.runs],
            "baseline": [s.baseline.passed, s.baseline.runs],
            "p_regressed": s.p_regressed,
            "power": s.power,
            "flaky": s.flaky,
            "reason": s.reason,
        }
        for s in verdict.scenarios
    ]


def run_status(results: Sequence[CaseResult], verdict: SuiteVerdict, has_baseline: bool) -> str:
    """The run's status: ``regressed`` / ``inconclusive`` / ``passed`` from the verdict against
    a baseline; without one, ``failed`` when any case failed, else ``inconclusive`` (passing
    runs with nothing to compare with show no regression, but are not a pass)."""
    if not has_baseline:
        failed = any(r.status in (CaseStatus.FAILED, CaseStatus.ERROR) for r in results)
        return "failed" if failed else "inconclusive"
    return {
        Verdict.REGRESSED: "regressed",
        Verdict.INCONCLUSIVE: "inconclusive",
        Verdict.IMPROVED: "passed",
        Verdict.PASS: "passed",
    }[verdict.verdict]
