"""A worker process serving only the eval activities, for the resume test: connects to the
Temporal server at ``--address`` with the tests' payload codec, runs cases against Postgres at
``--database`` with the scripted stand-in for the agent runtime (every turn takes ``--delay``
seconds), and touches ``--ready`` once it polls. Meant to be SIGKILLed. It imports only what
the eval workflow needs, so it starts quickly on a busy machine."""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities.evals import EvalActivities
from core.db import make_engine
from core.settings import Settings
from core.tenancy.agent_info import AgentInfo
from evals.execution import CaseWork
from evals.runner import Ports
from orchestration.codec import data_converter_for
from orchestration.evals import EvalSuiteWorkflow
from tests.eval_helpers import Reply, ScriptedRuntime, Tool


def agent_info(agent_id: str) -> AgentInfo:
    return AgentInfo(
        id=agent_id, org_id="org-evals", name="demo", platform_settings={}, credentials={}
    )


async def serve(args: argparse.Namespace) -> None:
    # The payload codec from BACKLINE_SECRET_KEY, as the test's client has it.
    client = await Client.connect(args.address, data_converter=data_converter_for(Settings()))
    runtime = ScriptedRuntime(
        {"four": Reply("Booked.", tool_calls=[Tool("create_booking", {"party_size": 4})])},
        default=Reply("How can I help?"),
        delay=args.delay,
    )
    work = CaseWork(make_engine(args.database), agent_info, lambda _: Ports(runtime))
    acts = EvalActivities(
        work.prepare, work.run_case, work.cancel_requested, work.finalize, heartbeat_every_s=0.2
    )
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            client,
            task_queue=args.queue,
            workflows=[EvalSuiteWorkflow],
            activities=acts.all(),
            activity_executor=executor,
            max_concurrent_activities=4,
        ):
            Path(args.ready).touch()
            await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--delay", type=float, default=0.5)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
