"""Run the three benchmarks one after another with short defaults and print a summary.

Each runs as its own process (``python -m bench.<name>``) with its own fresh stack, so one
failing does not leave the others' children behind. Full-length runs: call each module with
its own defaults (see bench/README.md).

    python -m bench.run_all [--sqlite] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, install_signal_handlers, machine_info, say, table

SHORT = {
    "lookup_latency": ["--duration", "30", "--steps", "34,68,100,150", "--step-seconds", "15"],
    "post_call_latency": ["--calls", "100"],
    "post_call_throughput": ["--duration", "60", "--warmup", "10", "--drain", "30"],
}


def summary_rows(name: str, data: dict[str, Any]) -> list[list[str]]:
    r = data["results"]
    if name == "lookup_latency":
        m = r["main"]
        best = r.get("max_rate_within_ceiling")
        return [
            [name, f"p95 <= 15 ms at {m['rate']:.0f} req/s", f"{m['p95_all_ms']:.1f} ms",
             "met" if m["p95_all_ms"] <= 15 else "NOT met"],
            [name, "highest rate with p95 <= 50 ms", f"{best:.3g} req/s" if best else "none", ""],
        ]  # fmt: skip
    if name == "post_call_latency":
        p95 = r["latency_ms"]["p95"]
        ok = p95 <= 2000 and not r["not_retrievable_within_timeout"]
        return [[name, "p95 <= 2 s (no LLM)", f"{p95 / 1000:.2f} s", "met" if ok else "NOT met"]]
    cps = r["completed_per_s"]
    return [[name, ">= 10 calls/s", f"{cps:.2f} calls/s", "met" if cps >= 10 else "NOT met"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    p.add_argument("--sqlite", action="store_true", help="embedded mode: SQLite file DB")
    p.add_argument("--out-dir", help="where to keep each benchmark's JSON (default: temp dir)")
    p.add_argument("--only", action="append", choices=list(SHORT), help="run only these")
    args = p.parse_args(argv)
    install_signal_handlers()
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="backline-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    say(f"machine: {machine_info()}")
    rows: list[list[str]] = []
    failed = []
    for name, extra in SHORT.items():
        if args.only and name not in args.only:
            continue
        out = out_dir / f"{name}.json"
        cmd = [PYTHON, "-m", f"bench.{name}", *extra, "--json", str(out)]
        if args.sqlite:
            cmd.append("--sqlite")
        say(f"running {' '.join(cmd[1:])}")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()  # the child stops its own stack and drops its database
            proc.wait(timeout=60)
            raise
        say(f"{name} finished in {time.monotonic() - t0:.0f}s (exit {code})")
        if code != 0 or not out.exists():
            failed.append(name)
            rows.append([name, "-", "failed", "NOT met"])
            continue
        rows.extend(summary_rows(name, json.loads(out.read_text())))
    print("\n## summary\n")
    print(table(["benchmark", "target", "measured", "result"], rows))
    print(f"\nJSON results in {out_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
