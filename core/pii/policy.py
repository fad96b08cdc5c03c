"""An agent's PII policy: which kinds of personal data its calls may keep.

Dates of birth, payment cards, national ids, bank accounts and e-mail addresses are always
redacted; no policy can keep them. Phone numbers are always replaced by their masked display
form (callers are recognized by a keyed hash, never by the number). The one choice an agent
has is the street address: a home-services agent may need the service address, so its policy
can keep it, and then it is stored as the caller's ``address`` fact instead of being replaced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ADDRESS_KEEP", "ADDRESS_REDACT", "DEFAULT_PII_POLICY", "PiiPolicy"]

AddressRule = Literal["redact", "keep"]
ADDRESS_REDACT: AddressRule = "redact"
ADDRESS_KEEP: AddressRule = "keep"


class PiiPolicy(BaseModel):
    """The agent's PII settings document (stored as JSON on the agent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: AddressRule = ADDRESS_REDACT
    """``redact`` (default): street addresses are replaced by ``[ADDRESS]`` everywhere.
    ``keep``: the address stays in the call's transcript and becomes the ``address`` fact."""

    @property
    def keeps_addresses(self) -> bool:
        return self.address == ADDRESS_KEEP

    @classmethod
    def from_stored(cls, stored: dict[str, object] | None) -> PiiPolicy:
        """The policy from the agent's stored document; a missing document is the default."""
        return cls.model_validate(stored) if stored else DEFAULT_PII_POLICY


DEFAULT_PII_POLICY = PiiPolicy()
