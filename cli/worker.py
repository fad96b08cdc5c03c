"""The Temporal worker: the composition root that wires activities to their services.

Run it with ``backline worker`` or ``python -m cli.worker`` (``backline up`` starts it for you).
It lives in ``cli/``, the top layer, because it imports every layer below it (activities,
workflows, connectors, core); see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.alerts import AlertActivities
from activities.calls import CallsActivities
from activities.drift import DriftActivities
from activities.evals import EvalActivities
from activities.knowledge import KnowledgeActivities
from activities.post_call import CallJudge, PostCallActivities
from activities.prompts import PromptActivities
from activities.retention import RetentionActivities
from api.state import AgentDirectory, AppState
from connectors.chat_llm import OpenAIChatModel
from connectors.embedder import shared_embedder
from connectors.knowledge import build_fetcher, build_ingestor, build_knowledge_index
from connectors.llm import OpenAICompatibleAnalyzer
from connectors.mcp.pool import McpClientPool
from connectors.otel import build_trace_exporter
from connectors.vectors.embedded import EmbeddedVectorStore
from core.agent.llm import ModelSettings
from core.db import make_engine
from core.egress import egress_policy
from core.evals.gate import StoredRunsEvalGate
from core.evals.pricing import eval_prices
from core.knowledge.ports import KnowledgeIndex
from core.knowledge.service import rebuild_stale_keyword_terms
from core.memory.ports import CallAnalyzer
from core.settings import Settings
from core.tenancy.agent_info import AgentInfo
from core.tools.gateway import ToolGateway
from evals.adapters import eval_ports
from evals.execution import CaseWork
from evals.runner import Ports
from orchestration.alert_delivery import AlertDeliveryWorkflow
from orchestration.calls_abandon import CallsAbandonWorkflow
from orchestration.calls_abandon_starters import ensure_abandon_schedule
from orchestration.codec import connect_temporal
from orchestration.drift_watch import DriftWatchWorkflow
from orchestration.evals import EvalSuiteWorkflow
from orchestration.knowledge_refresh import (
    KnowledgeFreshnessSweepWorkflow,
    KnowledgeRefreshWorkflow,
    KnowledgeScheduledRefreshWorkflow,
)
from orchestration.knowledge_starters import ensure_sweep_schedule
from orchestration.post_call import PostCallWorkflow
from orchestration.prompt_rollout import PromptRolloutWorkflow
from orchestration.retention import RetentionWorkflow
from orchestration.retention_starters import ensure_retention_schedule

log = logging.getLogger("backline.worker")


def build_analyzer(settings: Settings) -> CallAnalyzer | None:
    if not settings.llm_base_url or not settings.llm_analysis:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAICompatibleAnalyzer(
        settings.llm_base_url, settings.llm_model, key, timeout_s=settings.llm_timeout_s
    )


def judge_model_settings(settings: Settings) -> ModelSettings:
    """How the judge and the simulated caller call the configured model: at temperature 0."""
    return ModelSettings(
        model=settings.llm_model,
        temperature=0.0,
        timeout_s=settings.llm_timeout_s,
        fallback_model=settings.llm_fallback_model,
    )


def build_call_judge(settings: Settings) -> CallJudge | None:
    """The post-call judge of sampled calls: none without an LLM or with a sample rate of 0."""
    if not settings.llm_configured or settings.judge_sample_rate <= 0:
        return None
    key = settings.llm_api_key
    return CallJudge(
        lambda: OpenAIChatModel(
            settings.llm_base_url, key.get_secret_value() if key is not None else None
        ),
        judge_model_settings(settings),
        sample_rate=settings.judge_sample_rate,
        threshold=settings.judge_threshold,
    )


def build_post_call_activities(settings: Settings, engine: Engine) -> PostCallActivities:
    embedder = shared_embedder(backend=settings.embedder, model_dir=settings.resolved_model_dir)
    embedder.warm_up()
    return PostCallActivities(
        engine=engine,
        secret_key=settings.secret_key.get_secret_value(),
        embedder=embedder,
        vectors=EmbeddedVectorStore(engine),
        analyzer=build_analyzer(settings),
        trace_exporter=build_trace_exporter(settings),
        judge=build_call_judge(settings),
    )


def build_knowledge_activities(settings: Settings, engine: Engine) -> KnowledgeActivities:
    embedder = shared_embedder(backend=settings.embedder, model_dir=settings.resolved_model_dir)
    return KnowledgeActivities(
        engine=engine,
        index=build_knowledge_index(settings.data_dir, settings.weaviate_url),
        embedder=embedder,
        ingestor=build_ingestor(embedder),
        fetcher=build_fetcher(egress_policy(settings)),
    )


def build_retention_activities(settings: Settings, engine: Engine) -> RetentionActivities:
    return RetentionActivities(
        engine=engine,
        embedder=shared_embedder(),
        vectors=EmbeddedVectorStore(engine),
        default_raw_payload_days=settings.raw_payload_retention_days,
    )


def build_alert_activities(settings: Settings, engine: Engine) -> AlertActivities:
    return AlertActivities(engine, settings.secret_key.get_secret_value(), egress_policy(settings))


def eval_ports_for(settings: Settings, engine: Engine) -> Callable[[AgentInfo], Ports | None]:
    """The adapters an eval case runs with in this worker: the agent runtime composed as in the
    API (answering service, chat model, tool gateway, knowledge), the prompt cache refreshed
    before each case so the case is served what production would serve now."""
    secret = settings.secret_key.get_secret_value()
    embedder = shared_embedder(backend=settings.embedder, model_dir=settings.resolved_model_dir)
    vectors = EmbeddedVectorStore(engine)
    state = AppState(
        settings=settings,
        engine=engine,
        embedder=embedder,
        vectors=vectors,
        agents=AgentDirectory(engine, secret),
    )
    state.gateway = ToolGateway(
        engine,
        McpClientPool(state.egress),
        secret,
        org_calls_per_minute=settings.tools_org_calls_per_minute,
    )

    def ports_for(agent: AgentInfo) -> Ports | None:
        with Session(engine) as session:
            state.prompts.refresh(session)
        return eval_ports(
            state.runtime,
            engine,
            secret,
            embedder,
            vectors,
            state.egress,
            model=state.chat_model if settings.llm_configured else None,
            model_settings=judge_model_settings(settings),
            judge_threshold=settings.judge_threshold,
            deepeval=settings.eval_deepeval,
        )

    return ports_for


def build_eval_activities(
    settings: Settings,
    engine: Engine,
    ports_for: Callable[[AgentInfo], Ports | None] | None = None,
) -> EvalActivities:
    """The eval activities over the runner. ``ports_for`` builds the adapters a case runs with
    (the agent runtime, memory seeding, outcome checks, LLM judge) for an agent; until the agent
    runtime (core/agent/runtime.py) is wired in here, it is None and every case is recorded as
    an error saying no runtime is available."""
    directory = AgentDirectory(engine, settings.secret_key.get_secret_value())
    work = CaseWork(engine, directory.get, ports_for, eval_prices(settings))
    return EvalActivities(
        work.prepare,
        work.run_case,
        work.cancel_requested,
        work.finalize,
        create_scheduled=work.create_scheduled,
    )


# Every workflow the worker serves: the one list (tests build their workers from it too).
WORKFLOWS: tuple[type, ...] = (
    PostCallWorkflow,
    CallsAbandonWorkflow,
    PromptRolloutWorkflow,
    KnowledgeRefreshWorkflow,
    KnowledgeScheduledRefreshWorkflow,
    KnowledgeFreshnessSweepWorkflow,
    RetentionWorkflow,
    AlertDeliveryWorkflow,
    EvalSuiteWorkflow,
    DriftWatchWorkflow,
)
MAX_CONCURRENT_ACTIVITIES = 16


class ActivitySet(Protocol):
    """An object of activities (PostCallActivities, PromptActivities, ...)."""

    def all(self) -> list[Callable[..., object]]: ...


def activity_name(fn: Callable[..., Any]) -> str | None:
    """The name an ``@activity.defn`` callable is registered under (None: dynamic)."""
    return activity._Definition.must_from_callable(fn).name


def worker_for(
    client: Client,
    task_queue: str,
    activity_sets: Sequence[ActivitySet],
    executor: ThreadPoolExecutor,
    stand_ins: Sequence[Callable[..., Any]] = (),
) -> Worker:
    """A worker serving every workflow with the activities of ``activity_sets``.

    ``stand_ins`` replace the activities registered under the same names (as Temporal's testing
    guide does), e.g. one that fails or waits.
    """
    replaced = {activity_name(fn) for fn in stand_ins}
    activities = [
        fn for acts in activity_sets for fn in acts.all() if activity_name(fn) not in replaced
    ]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[*activities, *stand_ins],
        activity_executor=executor,
        # No more activities at once than the executor has threads (temporalio warns otherwise).
        max_concurrent_activities=min(MAX_CONCURRENT_ACTIVITIES, executor._max_workers),
    )


def build_worker(
    client: Client,
    settings: Settings,
    activities: PostCallActivities,
    executor: ThreadPoolExecutor,
    prompt_activities: PromptActivities | None = None,
    knowledge_activities: KnowledgeActivities | None = None,
    retention_activities: RetentionActivities | None = None,
    calls_activities: CallsActivities | None = None,
    alert_activities: AlertActivities | None = None,
    eval_activities: EvalActivities | None = None,
    drift_activities: DriftActivities | None = None,
) -> Worker:
    if prompt_activities is None:
        prompt_engine = make_engine(settings.resolved_database_url)
        prompt_activities = PromptActivities(prompt_engine, StoredRunsEvalGate(prompt_engine))
    prompts = prompt_activities
    knowledge = knowledge_activities or build_knowledge_activities(
        settings, make_engine(settings.resolved_database_url)
    )
    retention = retention_activities or build_retention_activities(
        settings, make_engine(settings.resolved_database_url)
    )
    calls = calls_activities or CallsActivities(
        make_engine(settings.resolved_database_url),
        settings.secret_key.get_secret_value(),
        settings.calls_abandon_after_s,
    )
    alerts = alert_activities or build_alert_activities(
        settings, make_engine(settings.resolved_database_url)
    )
    evals = eval_activities or build_eval_activities(
        settings, make_engine(settings.resolved_database_url)
    )
    drift = drift_activities or DriftActivities(make_engine(settings.resolved_database_url))
    return worker_for(
        client,
        settings.task_queue,
        [activities, prompts, knowledge, retention, calls, alerts, evals, drift],
        executor,
    )


async def connect(settings: Settings) -> Client:
    return await connect_temporal(settings)


def rebuild_keyword_terms(engine: Engine, index: KnowledgeIndex) -> list[str]:
    """Re-stem knowledge partitions an older stemmer wrote (after an upgrade), before polling."""
    with Session(engine) as session:
        return rebuild_stale_keyword_terms(session, index)


async def run_worker(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    try:
        await asyncio.to_thread(
            rebuild_keyword_terms,
            engine,
            build_knowledge_index(settings.data_dir, settings.weaviate_url),
        )
    except Exception as exc:  # keyword search degrades, dense still answers; next start retries
        log.warning("could not rebuild stale keyword terms: %s", exc)
    activities = build_post_call_activities(settings, engine)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
        worker = build_worker(
            client,
            settings,
            activities,
            executor,
            PromptActivities(engine, StoredRunsEvalGate(engine)),
            build_knowledge_activities(settings, engine),
            build_retention_activities(settings, engine),
            alert_activities=build_alert_activities(settings, engine),
            eval_activities=build_eval_activities(
                settings, engine, ports_for=eval_ports_for(settings, engine)
            ),
            drift_activities=DriftActivities(engine),
        )
        try:
            await ensure_sweep_schedule(client, task_queue=settings.task_queue)
        except Exception as exc:  # the worker still serves; the next start retries
            log.warning("could not create the knowledge freshness sweep schedule: %s", exc)
        try:
            await ensure_retention_schedule(client, task_queue=settings.task_queue)
        except Exception as exc:  # the worker still serves; the next start retries
            log.warning("could not create the retention schedule: %s", exc)
        try:
            await ensure_abandon_schedule(
                client, task_queue=settings.task_queue, interval_s=settings.calls_abandon_sweep_s
            )
        except Exception as exc:  # the worker still serves; the next start retries
            log.warning("could not create the abandoned-calls schedule: %s", exc)
        log.info("worker polling task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
    engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker(Settings()))


if __name__ == "__main__":
    main()
