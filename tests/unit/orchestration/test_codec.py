"""The payload codec: ciphertext out, the key id recorded, old keys still open old payloads."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from core.settings import Settings
from orchestration.codec import KEY_ID, EncryptionCodec, UnknownCodecKeyError, codec_for
from orchestration.post_call_types import PostCallInput

OLD = ("k1", b"\x01" * 32)
NEW = ("k2", b"\x02" * 32)


def _plain(text: str) -> Payload:
    return DataConverter.default.payload_converter.to_payloads([text])[0]


async def test_payloads_leave_encrypted_and_name_their_key() -> None:
    codec = EncryptionCodec([OLD])
    [sealed] = await codec.encode([_plain("Quillonia +14155550777")])
    assert b"Quillonia" not in sealed.SerializeToString()
    assert b"14155550777" not in sealed.SerializeToString()
    assert sealed.metadata[KEY_ID] == b"k1"
    [opened] = await codec.decode([sealed])
    assert opened == _plain("Quillonia +14155550777")


async def test_rotation_encrypts_with_the_new_key_and_still_decodes_the_old() -> None:
    [old_payload] = await EncryptionCodec([OLD]).encode([_plain("before rotation")])
    rotated = EncryptionCodec([NEW, OLD])
    [new_payload] = await rotated.encode([_plain("after rotation")])
    assert new_payload.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([old_payload, new_payload]) == [
        _plain("before rotation"),
        _plain("after rotation"),
    ]
    # Once the old key is dropped from the ring, its payloads fail loudly, naming the fix.
    with pytest.raises(UnknownCodecKeyError, match="k1"):
        await EncryptionCodec([NEW]).decode([old_payload])


async def test_a_payload_relabelled_with_another_key_id_does_not_open() -> None:
    [sealed] = await EncryptionCodec([OLD]).encode([_plain("x")])
    sealed.metadata[KEY_ID] = b"k2"
    with pytest.raises(UnknownCodecKeyError, match="altered"):
        await EncryptionCodec([NEW, OLD]).decode([sealed])


async def test_settings_keyring_round_trips_a_workflow_input() -> None:
    keys = ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in (NEW, OLD))
    settings = Settings(temporal_codec_keys=keys)
    assert [k for k, _ in settings.temporal_codec_keyring()] == ["k2", "k1"]
    codec = codec_for(settings)
    conv = DataConverter.default
    data = PostCallInput(inbox_id=7, platform="vapi", call_id="call-1")
    sealed = await codec.encode(conv.payload_converter.to_payloads([data]))
    [back] = conv.payload_converter.from_payloads(await codec.decode(sealed), [PostCallInput])
    assert back == data


def test_development_derives_a_key_from_the_secret_key_and_production_refuses_it() -> None:
    a = Settings(secret_key="one-secret-key-for-tests").temporal_codec_keyring()
    b = Settings(secret_key="another-secret-key-here").temporal_codec_keyring()
    assert len(a[0][1]) == 32 and a != b
    with pytest.raises(ValueError, match="BACKLINE_TEMPORAL_CODEC_KEYS"):
        Settings(env="production", secret_key="x" * 40, admin_token="y" * 40)


@pytest.mark.parametrize(
    "value",
    [
        "k1",
        "k1:not-base64!",
        "k1:" + base64.b64encode(b"short").decode(),
        f"k1:{base64.b64encode(b'a' * 32).decode()},k1:{base64.b64encode(b'b' * 32).decode()}",
    ],
)
def test_malformed_keyrings_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="BACKLINE_TEMPORAL_CODEC_KEYS"):
        Settings(temporal_codec_keys=value)
