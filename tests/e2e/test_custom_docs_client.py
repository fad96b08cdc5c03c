"""docs/custom-platform.md stays true: its Python client, exactly as printed, runs a call
against the live API, and every JSON request example on the page is one the parser accepts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from connectors.custom.webhooks import TYPES, parse_event
from fakes.custom import create_custom_tenant
from tests.conftest import Stack

DOC = Path(__file__).resolve().parents[2] / "docs" / "custom-platform.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def _blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(DOC.read_text()) if lang == language]


def _client() -> str:
    (code,) = [c for c in _blocks("python") if "def send(" in c]
    return code


def test_every_json_request_example_parses_and_every_block_is_json() -> None:
    requests: list[dict[str, Any]] = []
    for code in _blocks("json"):
        example = json.loads(code)  # replies and tool definitions must be valid JSON too
        if example.get("type") in TYPES:
            requests.append(example)
    assert {r["type"] for r in requests} == set(TYPES)
    for example in requests:
        assert parse_event(example).call.call_id == "call-7f3a"  # type: ignore[union-attr]


def test_the_client_is_short_enough_to_copy() -> None:
    signing_and_posting, walkthrough = _client().split('if __name__ == "__main__":')
    assert len(signing_and_posting.splitlines()) <= 45
    assert len(walkthrough.splitlines()) <= 35


@pytest.mark.postgres
@pytest.mark.temporal
async def test_the_documented_client_runs_a_call_against_the_live_api(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stack.http() as http:
        tenant = create_custom_tenant(http)
    env = {
        **os.environ,
        "BACKLINE_URL": stack.api.url,
        "BACKLINE_AGENT_ID": tenant.agent_id,
        "BACKLINE_SIGNING_SECRET": tenant.secret,
    }
    done = subprocess.run(
        [sys.executable, "-c", _client()], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    lines = done.stdout.splitlines()
    assert lines[0] == "known caller: False - (new)"
    assert lines[1].startswith("tool tc-1 -> ")
    assert lines[-1].startswith(f"call.ended: accepted post-call-{tenant.agent_id}-custom-demo-")

    # Imported as a module, ``send`` raises BacklineError carrying Backline's own words.
    module = types.ModuleType("backline_client")
    for key in ("BACKLINE_URL", "BACKLINE_AGENT_ID", "BACKLINE_SIGNING_SECRET"):
        monkeypatch.setenv(key, env[key])
    exec(compile(_client(), "backline_client", "exec"), module.__dict__)
    with pytest.raises(module.BacklineError, match="422 MalformedWebhookError: field 'type'"):
        module.send("call.ringing", {"id": "c-1"})
    recorded = module.send("transcript.update", {"id": "c-1"}, turn={"role": "agent", "text": "Hi"})
    assert recorded == {"version": "1", "status": "recorded"}
