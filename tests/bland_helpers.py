"""The Bland fakes under their test name (see ``fakes.bland``)."""

from __future__ import annotations

from fakes.bland import (
    JSON,
    BlandTenant,
    corrected_transcript,
    create_bland_tenant,
    dynamic_data,
    post_call,
    tool_request,
)

__all__ = [
    "JSON",
    "BlandTenant",
    "corrected_transcript",
    "create_bland_tenant",
    "dynamic_data",
    "post_call",
    "tool_request",
]
