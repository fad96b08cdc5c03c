"""The plain data crossing the calls domain's edge to the voice platforms.

``PlatformCredential`` is one of an agent's platform credentials, decrypted, as a connector
checks a request with it; the stored, encrypted row is ``core.tenancy.models.PlatformCredential``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformCredential:
    """A decrypted credential: ``kind`` is the platform's own (VAPI ``bearer`` | ``hmac``,
    Retell ``api_key``, Bland ``tool_token`` | ``signing_secret``, custom ``signing_secret``)."""

    kind: str
    secret: str
    header_name: str | None = None
