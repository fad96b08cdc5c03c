"""Test helpers: the platform fakes (``fakes``: tenants through the real admin API and VAPI
payloads built from the recorded ones), and callers and conversations the tests share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fakes.common import ADMIN, fixture, raw
from fakes.vapi import Tenant, assistant_request, create_tenant, end_of_call, tool_call

__all__ = [
    "ADMIN",
    "DANA_CALL_1",
    "DANA_CALL_2",
    "DistinctiveCaller",
    "Tenant",
    "assistant_request",
    "create_tenant",
    "end_of_call",
    "fixture",
    "raw",
    "tool_call",
]

DANA_CALL_1 = [
    ("agent", "Hi, thanks for calling. How can I help?"),
    ("caller", "Hi, my name is Dana. My water heater is leaking in the garage."),
    ("agent", "I can book a plumber for Thursday morning. Your work order is 1042."),
    ("caller", "Great. I prefer email for the confirmation, please."),
    ("agent", "Done, the confirmation is on its way by email."),
]
DANA_CALL_2 = [
    ("agent", "Hi, thanks for calling. How can I help?"),
    ("caller", "Hi, this is Dana again, calling about order 1042."),
    ("agent", "The plumber replaced the valve. Is it still leaking?"),
    ("caller", "No, it's fixed. But please text me instead of email from now on."),
    ("agent", "Understood, I switched your updates to text messages."),
]


@dataclass
class DistinctiveCaller:
    """A caller whose number, name, appliance and order reference exist nowhere else, so a test
    can search storage for any trace of them."""

    number: str
    name: str
    appliance: str
    order: str

    @classmethod
    def new(cls) -> DistinctiveCaller:
        tag = uuid.uuid4().hex
        letters = "".join(chr(ord("a") + int(c, 16) % 26) for c in tag[:8])
        return cls(
            number=f"+1415555{int(tag[8:12], 16) % 10000:04d}",
            name=f"Q{letters}",
            appliance=f"zorbatron {letters[::-1]}",
            order=f"QX-{int(tag[12:17], 16) % 100000:05d}",
        )

    @property
    def turns(self) -> list[tuple[str, str]]:
        return [
            ("agent", "Hi, thanks for calling. How can I help?"),
            ("caller", f"Hi, my name is {self.name}. My {self.appliance} is rattling again."),
            ("agent", f"I can book a technician for Friday. Your work order is {self.order}."),
            ("caller", "Great. I prefer email for the confirmation, please."),
            ("agent", "Done, the confirmation is on its way by email."),
        ]

    def markers(self, secret_key: str) -> list[bytes]:
        """Lower-case byte strings that would identify the caller or repeat what they said."""
        from core.pii.phone import caller_hash

        digits = self.number.lstrip("+")
        return [
            m.lower().encode()
            for m in (
                self.number,
                digits,
                caller_hash(secret_key, self.number),
                self.name,
                self.appliance,
                self.order,
            )
        ]
