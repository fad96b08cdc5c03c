"""The Retell fakes under their test name (see ``fakes.retell``)."""

from __future__ import annotations

from fakes.retell import (
    RetellTenant,
    call_analyzed,
    call_ended,
    call_inbound,
    create_org_and_agent,
    create_retell_tenant,
    function_call,
)

__all__ = [
    "RetellTenant",
    "call_analyzed",
    "call_ended",
    "call_inbound",
    "create_org_and_agent",
    "create_retell_tenant",
    "function_call",
]
