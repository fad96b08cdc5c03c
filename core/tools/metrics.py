"""In-process tool-call metrics: counts per outcome and recent latencies per (org, tool), and
their Prometheus text rendering.

Counts since the process started; latency quantiles over the last ``RESERVOIR`` calls of each
tool. Labels are org ids, tool and server names only, never arguments or results.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.tools.breaker import STATE_CODES

RESERVOIR = 1024


@dataclass
class _ToolSeries:
    counts: Counter[str] = field(default_factory=Counter)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR))


def _quantiles(values: deque[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    p50, p95 = np.percentile(np.fromiter(values, dtype=np.float64), [50, 95])
    return round(float(p50), 2), round(float(p95), 2)


class ToolMetrics:
    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _ToolSeries] = {}

    def observe(self, org_id: str, tool: str, status: str, latency_ms: float) -> None:
        series = self._series.setdefault((org_id, tool), _ToolSeries())
        series.counts[status] += 1
        series.latencies_ms.append(latency_ms)

    def for_org(self, org_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for (org, tool), series in sorted(self._series.items()):
            if org != org_id:
                continue
            p50, p95 = _quantiles(series.latencies_ms)
            out[tool] = {
                "calls": sum(series.counts.values()),
                "by_status": dict(sorted(series.counts.items())),
                "latency_p50_ms": p50,
                "latency_p95_ms": p95,
            }
        return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_prometheus(
    org_id: str, metrics: ToolMetrics, breakers: dict[str, dict[str, Any]]
) -> str:
    """Prometheus text exposition (v0.0.4) of one organization's tool metrics and breakers."""
    org = _label(org_id)
    lines = [
        "# HELP backline_tool_calls_total Tool calls through the gateway by outcome.",
        "# TYPE backline_tool_calls_total counter",
    ]
    per_tool = metrics.for_org(org_id)
    for tool, data in per_tool.items():
        for status, n in data["by_status"].items():
            lines.append(
                f'backline_tool_calls_total{{org="{org}",tool="{_label(tool)}",'
                f'status="{_label(status)}"}} {n}'
            )
    lines += [
        "# HELP backline_tool_latency_ms Gateway latency of recent tool calls.",
        "# TYPE backline_tool_latency_ms summary",
    ]
    for tool, data in per_tool.items():
        for q, key in (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms")):
            if data[key] is not None:
                lines.append(
                    f'backline_tool_latency_ms{{org="{org}",tool="{_label(tool)}",'
                    f'quantile="{q}"}} {data[key]}'
                )
    lines += [
        "# HELP backline_tool_breaker_state Circuit breaker per server: 0 closed, 1 half-open, "
        "2 open.",
        "# TYPE backline_tool_breaker_state gauge",
    ]
    for server, snap in sorted(breakers.items()):
        lines.append(
            f'backline_tool_breaker_state{{org="{org}",server="{_label(server)}"}} '
            f"{STATE_CODES[snap['state']]}"
        )
    lines += [
        "# HELP backline_tool_breaker_opens_total Times each server's breaker opened.",
        "# TYPE backline_tool_breaker_opens_total counter",
    ]
    for server, snap in sorted(breakers.items()):
        lines.append(
            f'backline_tool_breaker_opens_total{{org="{org}",server="{_label(server)}"}} '
            f"{snap['opens_total']}"
        )
    return "\n".join(lines) + "\n"
