"""The Temporal payload codec: every payload is encrypted (AES-256-GCM) before it leaves us.

Histories are readable by anyone who reaches the Temporal server or its UI, so what Backline
sends there is ciphertext; only processes holding the keyring (API, worker, the operator's
codec endpoint) read it. Each payload records the id of the key that sealed it, so a keyring
``[new, old]`` encrypts with ``new`` and still opens histories written under ``old``.

Not a workflow module: workflows never import this (the worker applies it around them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from core.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class UnknownCodecKeyError(ValueError):
    """A payload was sealed with a key the keyring no longer holds."""


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the whole serialized payload (metadata and data), one random nonce each."""

    def __init__(self, keyring: Sequence[tuple[str, bytes]]) -> None:
        if not keyring:
            raise ValueError("the codec needs at least one key")
        self._current_id, current = keyring[0]
        self._encryptor = AESGCM(current)
        self._keys = {key_id: AESGCM(key) for key_id, key in keyring}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        # The key id is bound as associated data: a payload relabelled with another id fails.
        sealed = self._encryptor.encrypt(
            nonce, payload.SerializeToString(), self._current_id.encode()
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._current_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            # Written before the codec existed (or by a client without it): pass through.
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownCodecKeyError(
                f"payload sealed with key id {key_id!r}, which BACKLINE_TEMPORAL_CODEC_KEYS "
                "no longer lists; add the old key back (after the current one) to read it"
            )
        try:
            plain = key.decrypt(
                payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode()
            )
        except InvalidTag as exc:
            raise UnknownCodecKeyError(
                f"payload under key id {key_id!r} does not decrypt: the key was replaced "
                "under the same id, or the payload was altered"
            ) from exc
        return Payload.FromString(plain)


def codec_for(settings: Settings) -> EncryptionCodec:
    return EncryptionCodec(settings.temporal_codec_keyring())


def data_converter_for(settings: Settings) -> DataConverter:
    """The converter for every client Backline builds: payloads and failure details encrypted."""
    return DataConverter(
        payload_codec=codec_for(settings),
        # Failure messages and stack traces can quote data too: they travel encoded as well.
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect_temporal(settings: Settings) -> Client:
    """A Temporal client for these settings, encrypting every payload it sends."""
    address = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    return await Client.connect(
        address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter_for(settings),
    )
