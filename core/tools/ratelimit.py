"""Rate limits for tool calls: per tool (protecting the tool's own backend) and per organization
(protecting everyone else sharing this Backline), as moving windows of one minute.

A call over a limit is refused at once rather than queued: on a live call, waiting for a slot
is dead air, and the agent can say "give me a moment" instead. Limits are counted per process
(in memory); each API replica enforces them on its own share of the traffic.
"""

from __future__ import annotations

from typing import Any, Literal

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

LimitScope = Literal["tool", "org"]


class RateLimitPolicy:
    def __init__(self, org_calls_per_minute: int) -> None:
        self.org_calls_per_minute = org_calls_per_minute
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def _item(self, per_minute: int) -> RateLimitItemPerMinute:
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        return item

    def acquire(self, org_id: str, tool_key: str, tool_per_minute: int) -> LimitScope | None:
        """Count one call; the scope whose limit it would exceed (nothing counted), or None."""
        tool_item = self._item(tool_per_minute)
        org_item = self._item(self.org_calls_per_minute)
        if not self._limiter.test(tool_item, "tool", org_id, tool_key):
            return "tool"
        if not self._limiter.test(org_item, "org", org_id):
            return "org"
        self._limiter.hit(tool_item, "tool", org_id, tool_key)
        self._limiter.hit(org_item, "org", org_id)
        return None

    def usage(
        self, org_id: str, tool_key: str | None = None, per_minute: int = 0
    ) -> dict[str, Any]:
        """Remaining calls in the current window (org, or one tool with its limit)."""
        if tool_key is None:
            item = self._item(self.org_calls_per_minute)
            stats = self._limiter.get_window_stats(item, "org", org_id)
            return {"limit_per_minute": self.org_calls_per_minute, "remaining": stats.remaining}
        item = self._item(per_minute)
        stats = self._limiter.get_window_stats(item, "tool", org_id, tool_key)
        return {"limit_per_minute": per_minute, "remaining": stats.remaining}
