"""The Temporal worker: the composition root that wires activities to their services.

Run it with ``backline worker`` (``backline up`` starts it for you).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.post_call import PostCallActivities
from connectors.embedder import shared_embedder
from connectors.llm import OpenAICompatibleAnalyzer
from connectors.vectors.embedded import EmbeddedVectorStore
from core.db import make_engine
from core.memory.ports import CallAnalyzer
from core.settings import Settings
from workflows.post_call import PostCallWorkflow

log = logging.getLogger("backline.worker")


def build_analyzer(settings: Settings) -> CallAnalyzer | None:
    if not settings.llm_base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAICompatibleAnalyzer(
        settings.llm_base_url, settings.llm_model, key, timeout_s=settings.llm_timeout_s
    )


def build_post_call_activities(settings: Settings, engine: Engine) -> PostCallActivities:
    embedder = shared_embedder()
    embedder.warm_up()
    return PostCallActivities(
        engine=engine,
        secret_key=settings.secret_key.get_secret_value(),
        embedder=embedder,
        vectors=EmbeddedVectorStore(engine),
        analyzer=build_analyzer(settings),
    )


def build_worker(
    client: Client,
    settings: Settings,
    activities: PostCallActivities,
    executor: ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[PostCallWorkflow],
        activities=activities.all(),  # type: ignore[arg-type]
        activity_executor=executor,
        max_concurrent_activities=16,
    )


async def connect(settings: Settings) -> Client:
    address = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    return await Client.connect(address, namespace=settings.temporal_namespace)


async def run_worker(settings: Settings) -> None:
    engine = make_engine(settings.resolved_database_url)
    activities = build_post_call_activities(settings, engine)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(client, settings, activities, executor)
        log.info("worker polling task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
    engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_worker(Settings()))


if __name__ == "__main__":
    main()
