"""Run a Python module under a small sampling profiler (py-spy is not installed).

    python -m bench.sampled --out prof.txt [--interval-ms 5] -- -m cli.worker

A daemon thread samples every thread's Python stack (``sys._current_frames``) at a fixed
interval; when the module returns (SIGTERM is turned into a clean exit), the report is written:
per thread kind, the share of samples in each function (inclusive and own), leaving out
samples where the thread is idle (waiting on a lock, a queue, a selector or a sleep). A thread
waiting for the GIL shows the Python frame it is about to run, so CPU-bound contention shows up
as time in that frame. Native threads (Temporal's Rust core, torch's OpenMP pool) are invisible
here; see the per-thread CPU in the benchmark tables for those.
"""

from __future__ import annotations

import argparse
import collections
import os
import runpy
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

IDLE = {
    "wait", "select", "poll", "epoll", "_worker", "get", "sleep", "acquire", "accept",
    "read", "recv", "recv_into", "readinto", "_wait_for_tstate_lock", "join", "run_forever",
    "_run_once", "wait_for", "_poll",
}  # fmt: skip


class Sampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.interval = interval
        self.incl: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.own: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.busy: collections.Counter[str] = collections.Counter()
        self.total: collections.Counter[str] = collections.Counter()
        self.running = True
        self.started_at = time.monotonic()

    @staticmethod
    def _label(frame: FrameType) -> str:
        code = frame.f_code
        path = code.co_filename
        for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        return f"{path}:{code.co_name}"

    def run(self) -> None:
        me = threading.get_ident()
        while self.running:
            names = {t.ident: t.name for t in threading.enumerate()}
            for tid, frame in sys._current_frames().items():
                if tid == me:
                    continue
                kind = _kind(names.get(tid, "?"))
                self.total[kind] += 1
                if frame.f_code.co_name in IDLE:
                    continue
                self.busy[kind] += 1
                seen: set[str] = set()
                f: FrameType | None = frame
                first = True
                while f is not None:
                    label = self._label(f)
                    if first:
                        self.own[kind][label] += 1
                        first = False
                    if label not in seen:
                        self.incl[kind][label] += 1
                        seen.add(label)
                    f = f.f_back
            time.sleep(self.interval)

    def report(self, top: int = 25) -> str:
        wall = time.monotonic() - self.started_at
        lines = [f"sampled for {wall:.0f}s every {self.interval * 1000:.0f} ms"]
        for kind in sorted(self.busy, key=lambda k: -self.busy[k]):
            busy = self.busy[kind]
            lines.append(
                f"\n== threads '{kind}': {busy} busy samples of {self.total[kind]} "
                f"({100 * busy / max(self.total[kind], 1):.0f}% busy)"
            )
            lines.append("-- inclusive (share of busy samples)")
            for label, n in self.incl[kind].most_common(top):
                lines.append(f"{100 * n / busy:5.1f}%  {label}")
            lines.append("-- own (top of stack)")
            for label, n in self.own[kind].most_common(top // 2):
                lines.append(f"{100 * n / busy:5.1f}%  {label}")
        return "\n".join(lines)


def _kind(name: str) -> str:
    """Group threads by role: strip numeric suffixes such as 'ThreadPoolExecutor-0_3'."""
    base = name.split("_")[0] if name.startswith("ThreadPoolExecutor") else name
    return base.rstrip("0123456789-") or name


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sampled", description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--interval-ms", type=float, default=5.0)
    p.add_argument("rest", nargs=argparse.REMAINDER, help="-- -m module [args]")
    args = p.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    if len(rest) < 2 or rest[0] != "-m":
        p.error("expected: -- -m module [args]")
    module, sys.argv = rest[1], [rest[1], *rest[2:]]
    sampler = Sampler(args.interval_ms / 1000)
    sampler.start()

    def _term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _term)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        sampler.running = False
        Path(args.out).write_text(sampler.report())
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
