"""Secrets at rest and API-key tokens.

Platform credentials are encrypted with a key derived from ``BACKLINE_SECRET_KEY``; API keys are
stored only as keyed hashes. Rotating the secret key invalidates both (and changes caller
hashes): re-set platform credentials and re-issue API keys, as docs/auth.md describes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

API_KEY_PREFIX = "bl"


class SecretBox:
    """Symmetric encryption of stored credentials (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, secret_key: str) -> None:
        derived = hashlib.sha256(b"backline-credentials:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "stored credential cannot be decrypted with the current BACKLINE_SECRET_KEY"
            ) from exc


def hash_token(secret_key: str, token: str) -> str:
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()


def new_api_key() -> tuple[str, str]:
    """A fresh ``(key_id, token)``; the token is shown once and stored only as a hash."""
    key_id = secrets.token_hex(6)
    return key_id, f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}"


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
