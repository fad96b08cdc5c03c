"""The plain data crossing the calls domain's edge to the voice platforms.

``PlatformCredential`` is one of an agent's platform credentials, decrypted, as a connector
checks a request with it; the stored, encrypted row is ``core.tenancy.models.PlatformCredential``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformCredential:
    """A decrypted credential: ``kind`` is one of the platform's own credential kinds (its
    connector's ``credential_kinds``)."""

    kind: str
    secret: str
    header_name: str | None = None
