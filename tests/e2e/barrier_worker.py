"""A real worker process whose write_memories activity waits on a barrier file first.

Registered under the activity's real name (a stand-in, as Temporal's testing guidance does), so
the durability test can kill the process while that activity is in flight.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio import activity

from cli.worker import build_post_call_activities, connect, worker_for
from core.settings import Settings
from orchestration.post_call_types import ACT_WRITE_MEMORIES, WriteMemoryInput, WriteMemoryResult


async def main() -> None:
    settings = Settings()
    from core.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    acts = build_post_call_activities(settings, engine)
    barrier = Path(os.environ["BARRIER_FILE"])
    entered = Path(os.environ["ENTERED_FILE"])

    @activity.defn(name=ACT_WRITE_MEMORIES)
    def held_write_memories(data: WriteMemoryInput) -> WriteMemoryResult:
        entered.write_text("in flight")
        while barrier.exists():
            time.sleep(0.05)
        return acts.write_memories(data)

    client = await connect(settings)
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = worker_for(
            client, settings.task_queue, [acts], executor, stand_ins=[held_write_memories]
        )
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
