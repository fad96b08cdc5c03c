"""What the LLM-judged parts of one eval case cost: model requests and wall time, Backline's own
judge and simulated caller against deepeval's (evals/deepeval_engine.py, when installed).

Per engine, against the request-driven fake model (``fakes.llm``) answering every request after
a fixed time to first token (``--ttft-ms``, 300 by default), over real HTTP through the chat
connector: the scenario's ``rubric`` on a three-turn transcript, the three conversational
metrics on the same transcript, and a simulated caller talking to a scripted agent until its
goal is met (two caller lines, then the stop). The request count is what a paid model would
bill per case; the wall time shows how much of it runs in parallel (the metrics are gathered
concurrently, deepeval's steps within a metric are sequential).

Run: ``.venv/bin/python -m bench.eval_judge_cost [--ttft-ms 300] [--repeats 3] [--json FILE]``
(deepeval's rows need ``pip install --no-deps -r requirements-deepeval.txt``; without it they
are reported as not run).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import machine_info, table, write_json
from connectors.chat_llm import OpenAIChatModel
from core.agent.llm import ModelSettings
from core.calls.events import Turn
from evals.judge import ChatModelJudge
from evals.ports import RubricJudge, SimulatedCaller
from evals.simulator import ChatModelCaller
from fakes.llm import FakeLLM, FakeLLMConfig, fake_llm

SETTINGS = ModelSettings(model="bench-judge", temperature=0.0, timeout_s=60.0)
RUBRIC = "The agent confirms the booking for four people under the name Dana."
TRANSCRIPT = [
    Turn(role="agent", text="Thanks for calling, how can I help?"),
    Turn(role="caller", text="A table for four please, name Dana."),
    Turn(role="agent", text="Your booking for four people is confirmed under the name Dana."),
]
GOAL = "book a table for four, under the name Dana"


def agent_reply(line: str) -> str:
    if "name" in line.lower():
        return "Your table for four is booked under Dana. It's confirmed."
    return "Sure, what name should I put it under?"


async def simulate(caller: SimulatedCaller) -> int:
    transcript = [Turn(role="agent", text="Hello, how can I help?")]
    for _ in range(6):
        line = await caller.next_line(GOAL, "Dana, in a hurry", transcript)
        if line is None:
            break
        transcript += [Turn(role="caller", text=line), Turn(role="agent", text=agent_reply(line))]
    return sum(1 for t in transcript if t.role == "caller")


async def measure(
    server: FakeLLM, what: Callable[[], Awaitable[Any]], repeats: int
) -> dict[str, Any]:
    walls, counts = [], []
    result: Any = None
    for _ in range(repeats):
        before = len(server.requests)
        started = time.perf_counter()
        result = await what()
        walls.append(time.perf_counter() - started)
        counts.append(len(server.requests) - before)
    return {
        "requests": statistics.median(counts),
        "wall_s": statistics.median(walls),
        "wall_s_max": max(walls),
        "result": result,
    }


def engines(model: OpenAIChatModel) -> dict[str, tuple[RubricJudge, SimulatedCaller] | None]:
    out: dict[str, tuple[RubricJudge, SimulatedCaller] | None] = {
        "backline": (ChatModelJudge(model, SETTINGS), ChatModelCaller(model, SETTINGS)),
        "deepeval": None,
    }
    if importlib.util.find_spec("deepeval") is not None:
        from evals.deepeval_engine import DeepEvalCaller, DeepEvalJudge

        out["deepeval"] = (DeepEvalJudge(model, SETTINGS), DeepEvalCaller(model, SETTINGS))
    return out


async def run(ttft_ms: float, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with fake_llm(FakeLLMConfig(ttft_s=ttft_ms / 1000)) as server:
        model = OpenAIChatModel(base_url=server.base_url, api_key=None)
        try:
            for name, parts in engines(model).items():
                if parts is None:
                    results[name] = None
                    continue
                judge, caller = parts
                metrics = getattr(judge, "metrics")  # noqa: B009 - not on the RubricJudge port
                results[name] = {
                    "rubric": await measure(
                        server, lambda j=judge: j.judge(RUBRIC, TRANSCRIPT), repeats
                    ),
                    "metrics": await measure(server, lambda m=metrics: m(TRANSCRIPT), repeats),
                    "caller": await measure(server, lambda c=caller: simulate(c), repeats),
                }
        finally:
            await model.aclose()
    return results


def rows(results: dict[str, Any], ttft_ms: float) -> list[list[str]]:
    out = []
    for name, parts in results.items():
        if parts is None:
            out.append([name, "(deepeval not installed)", "", "", "", ""])
            continue
        for part, m in parts.items():
            detail = m["result"]
            if part == "rubric":
                shown = f"passed={detail[0]}"
            elif part == "metrics":
                scores = {k: v["score"] for k, v in detail["rubrics"].items()}
                shown = ", ".join(f"{k}={v}" for k, v in scores.items())
            else:
                shown = f"{detail} caller lines"
            out.append(
                [
                    name,
                    part,
                    f"{m['requests']:g}",
                    f"{m['wall_s'] * 1000:.0f} ms",
                    f"{m['wall_s'] * 1000 / ttft_ms:.1f}" if ttft_ms else "",
                    shown,
                ]
            )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ttft-ms", type=float, default=300.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    results = asyncio.run(run(args.ttft_ms, args.repeats))
    headers = ["engine", "part", "LLM requests", "wall (median)", "wall / TTFT", "outcome"]
    print(table(headers, rows(results, args.ttft_ms)))
    print(machine_info())
    serializable = {
        name: None
        if parts is None
        else {part: {k: v for k, v in m.items() if k != "result"} for part, m in parts.items()}
        for name, parts in results.items()
    }
    write_json(args.json, {"ttft_ms": args.ttft_ms, "results": serializable})


if __name__ == "__main__":
    main()
