"""Create-or-update for Temporal Schedules: the one idempotent way every start-up and sync
brings a schedule to its current definition. Client-side only; never imported by a workflow."""

from __future__ import annotations

from typing import Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)


async def upsert_schedule(
    client: Client, schedule_id: str, schedule: Schedule
) -> Literal["created", "updated"]:
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:

        def _replace(_input: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(_replace)
        return "updated"
