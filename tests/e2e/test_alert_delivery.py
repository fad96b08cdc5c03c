"""Alert delivery end to end: channels and rules through the real API, alerts raised in core,
the outbox dispatched by the API's tick to AlertDeliveryWorkflow on the Temporal dev server,
and a local receiver (127.0.0.1, admitted with ``BACKLINE_EGRESS_ALLOW``) that checks what
arrives: a valid ``Backline-Signature``, Slack's incoming-webhook body, the same idempotency key
on a retry after two 500s, nothing during a cool-down, and a 4xx recorded as a failure."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.alerts import AlertActivities
from cli.main import app
from cli.worker import worker_for
from connectors.embedder import MiniLMEmbedder
from core.egress import egress_policy
from core.monitoring.alerts import raise_alert
from core.monitoring.delivery import verify_signature
from tests.conftest import (
    LOOPBACK_ALLOWED,
    ApiServer,
    async_wait_for,
    make_settings,
    temporal_address,
)
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP receiver: records every POST; answers the queued status codes of a path
    first, then 200."""

    port: int = 0
    got: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with rec.lock:
                rec.got.append(Received(self.path, dict(self.headers.items()), body))
                queued = rec.answers.get(self.path) or []
                code = queued.pop(0) if queued else 200
            self.send_response(code)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@dataclass
class AlertStack:
    api: ApiServer
    engine: Engine

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=30)


@pytest_asyncio.fixture(loop_scope="session")
async def alert_stack(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
) -> AsyncIterator[AlertStack]:
    """The API (its tick dispatches the outbox) and a worker with the alert activities, with
    loopback admitted by the operator's egress allow-list."""
    settings = make_settings(
        pg_url,
        tmp_path,
        temporal_address=temporal_address(temporal_env),
        egress_allow=LOOPBACK_ALLOWED,
    )
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    acts = AlertActivities(
        pg_engine, settings.secret_key.get_secret_value(), egress_policy(settings)
    )
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with worker_for(temporal_env.client, settings.task_queue, [acts], executor):
            yield AlertStack(api, pg_engine)
            await asyncio.to_thread(api.stop)


def _key(http: httpx.Client, org_id: str, scope: str) -> dict[str, str]:
    r = http.post(f"/v1/orgs/{org_id}/keys", json={"name": scope, "scopes": [scope]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _raise(engine: Engine, org: str, agent: str, subject: str) -> int:
    with Session(engine, expire_on_commit=False) as s:
        alert = raise_alert(
            s, org_id=org, agent_id=agent, kind="knowledge_source_failing",
            message="source 'faq' failed: HTTP 503", subject=subject, severity="critical",
        )  # fmt: skip
        s.commit()
        assert alert.id is not None
        return alert.id


def _deliveries(http: httpx.Client, alert_id: int, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = http.get(f"/v1/alerts/{alert_id}", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


async def test_alerts_reach_a_signed_webhook_and_slack_with_retries_and_cooldown(
    alert_stack: AlertStack, receiver: Receiver
) -> None:
    http = alert_stack.http()
    tenant = create_tenant(http)
    org, agent = tenant.org_id, tenant.agent_id
    admin = _key(http, org, "admin")
    viewer = _key(http, org, "viewer")

    # A private address is refused at creation, naming why; loopback passes (allow-listed).
    r = http.post(
        "/v1/alert-channels",
        json={"name": "intranet", "kind": "webhook", "url": "http://10.0.0.7/hook"},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "EgressDeniedError"
    assert "private" in r.json()["detail"] and "BACKLINE_EGRESS_ALLOW" in r.json()["detail"]
    r = http.post(
        "/v1/alert-channels",
        json={"name": "ops", "kind": "webhook", "url": receiver.url("/hook")},
        headers=viewer,
    )
    assert r.status_code == 403, r.text

    r = http.post(
        "/v1/alert-channels",
        json={"name": "ops", "kind": "webhook", "url": receiver.url("/hook")},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    secret = hook["signing_secret"]
    assert secret and hook["signed"] and hook["url_host"] == "127.0.0.1"
    r = http.post(
        "/v1/alert-channels",
        json={"name": "slack", "kind": "slack", "url": receiver.url("/slack")},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    slack = r.json()
    assert slack["signing_secret"] is None
    listed = http.get("/v1/alert-channels", headers=viewer).json()
    assert [c["id"] for c in listed] == [hook["id"], slack["id"]]
    assert "url" not in listed[0] and secret not in json.dumps(listed)

    # The test notification is signed like a real one.
    r = http.post(f"/v1/alert-channels/{hook['id']}/test", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] and r.json()["status_code"] == 200
    [probe] = receiver.on("/hook")
    assert verify_signature(
        secret, probe.headers["Backline-Signature"], probe.body, int(time.time())
    )
    assert json.loads(probe.body)["type"] == "alert.test"

    # No rules: a critical alert goes to both channels; the webhook answers 500 twice first.
    receiver.answers["/hook"] = [500, 500]
    alert_id = _raise(alert_stack.engine, org, agent, "knowledge_source:faq")

    def _sent(n_hook: int, n_slack: int) -> bool:
        return len(receiver.on("/hook")) >= n_hook and len(receiver.on("/slack")) >= n_slack

    await async_wait_for(lambda: _sent(4, 1), timeout=60)
    attempts = receiver.on("/hook")[1:]
    assert len(attempts) == 3
    keys = {a.headers["Idempotency-Key"] for a in attempts}
    assert keys == {f"alert-{alert_id}-{hook['id']}-firing"}
    for a in attempts:
        assert verify_signature(secret, a.headers["Backline-Signature"], a.body, int(time.time()))
        assert a.headers["Backline-Signature"].startswith("t=")
    body = json.loads(attempts[-1].body)
    assert body["type"] == "alert.firing" and body["alert"]["id"] == alert_id
    assert body["alert"]["severity"] == "critical"
    [posted] = receiver.on("/slack")
    slack_body = json.loads(posted.body)
    assert "source 'faq' failed" in slack_body["text"]
    assert slack_body["blocks"][0]["type"] == "header"
    assert "Backline-Signature" not in posted.headers

    def _all_sent(n: int) -> bool:
        rows = _deliveries(http, alert_id, viewer)
        return len(rows) == n and all(d["status"] == "sent" for d in rows)

    await async_wait_for(lambda: _all_sent(2), timeout=30)
    rows = {d["channel_id"]: d for d in _deliveries(http, alert_id, viewer)}
    assert rows[hook["id"]]["attempts"] == 3 and rows[hook["id"]]["response_status"] == 200
    assert rows[slack["id"]]["attempts"] == 1

    # Resolving notifies both channels (a state change), once.
    r = http.post(
        f"/v1/orgs/{org}/alerts/{alert_id}/resolve", json={"note": "fixed"}, headers=admin
    )
    assert r.status_code == 200, r.text
    await async_wait_for(lambda: _sent(5, 2), timeout=30)
    resolved = json.loads(receiver.on("/hook")[-1].body)
    assert resolved["type"] == "alert.resolved" and resolved["alert"]["resolution"] == "fixed"

    # The same subject fires again within the cool-down: recorded, not sent.
    again = _raise(alert_stack.engine, org, agent, "knowledge_source:faq")
    assert again != alert_id
    statuses = [d["status"] for d in _deliveries(http, again, viewer)]
    assert statuses == ["suppressed", "suppressed"]
    await asyncio.sleep(4)  # two dispatch ticks: nothing more arrives
    assert len(receiver.on("/hook")) == 5 and len(receiver.on("/slack")) == 2


async def test_a_rejected_delivery_is_failed_with_its_error_and_rules_route(
    alert_stack: AlertStack, receiver: Receiver
) -> None:
    http = alert_stack.http()
    tenant = create_tenant(http)
    org, agent = tenant.org_id, tenant.agent_id
    admin = _key(http, org, "admin")
    release = _key(http, org, "release")
    r = http.post(
        "/v1/alert-channels",
        json={"name": "gone", "kind": "webhook", "url": receiver.url("/gone"),
              "secret": "a-long-enough-shared-secret"},
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    channel = r.json()
    assert channel["signing_secret"] is None  # chosen by the caller: never echoed
    rules = f"/v1/agents/{agent}/alert-rules"
    r = http.post(
        rules,
        json={"name": "drift", "kind": "trend", "channel_ids": [channel["id"]]},
        headers=release,
    )
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["alert_kinds"] == ["drift_*"]
    r = http.post(rules, json={"name": "bad", "kind": "threshold"}, headers=release)
    assert r.status_code == 422, r.text
    r = http.post(rules, json={"name": "x", "kind": "single", "channel_ids": [999999]},
                  headers=release)  # fmt: skip
    assert r.status_code == 422 and "999999" in r.text

    receiver.answers["/gone"] = [410]
    with Session(alert_stack.engine, expire_on_commit=False) as s:
        ignored = raise_alert(s, org_id=org, agent_id=agent, kind="prompt_rollout_paused",
                              message="paused", severity="critical")  # fmt: skip
        drift = raise_alert(s, org_id=org, agent_id=agent, kind="drift_score_mean",
                            message="score drifted down", subject="drift:score")  # fmt: skip
        s.commit()

    def _failed() -> bool:
        rows = _deliveries(http, drift.id or 0, admin)
        return bool(rows) and rows[0]["status"] == "failed"

    await async_wait_for(_failed, timeout=60)
    [row] = _deliveries(http, drift.id or 0, admin)
    assert row["attempts"] == 1 and row["response_status"] == 410
    assert row["rule_id"] == rule["id"] and "HTTP 410" in row["last_error"]
    assert _deliveries(http, ignored.id or 0, admin) == []  # matched no rule
    assert len(receiver.on("/gone")) == 1

    r = http.delete(f"{rules}/{rule['id']}", headers=release)
    assert r.status_code == 200 and r.json()["id"] == rule["id"]
    assert http.get(rules, headers=release).json() == []
    r = http.delete(f"/v1/alert-channels/{channel['id']}", headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "gone"
    assert http.get("/v1/alert-channels", headers=admin).json() == []


async def test_the_cli_manages_channels_and_rules_and_shows_deliveries(
    alert_stack: AlertStack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    http = alert_stack.http()
    tenant = create_tenant(http)
    org, agent = tenant.org_id, tenant.agent_id
    monkeypatch.setenv("BACKLINE_API_URL", alert_stack.api.url)
    admin = _key(http, org, "admin")
    monkeypatch.setenv("BACKLINE_API_KEY", admin["Authorization"][7:])
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert "signed webhooks and Slack" in cli("alerts", "channels", "--help")
    assert "--window" in cli("alerts", "rules", "add", "--help")
    refused = runner.invoke(
        app, ["alerts", "channels", "add", "--name", "x", "--url", "http://192.168.1.2/"]
    )
    assert refused.exit_code == 1 and "EgressDeniedError" in refused.output
    out = cli("alerts", "channels", "add", "--name", "ops", "--url", receiver.url("/cli"))
    assert "signing secret (shown once" in out and "127.0.0.1" in out
    [channel] = json.loads(cli("alerts", "channels", "list", "--json"))
    assert "delivered: HTTP 200" in cli("alerts", "channels", "test", str(channel["id"]))
    rule = json.loads(
        cli("alerts", "rules", "add", "--agent", agent, "--name", "low", "--kind", "threshold",
            "--metric", "score_mean", "--op", "<", "--value", "0.6", "--window", "5", "--json")
    )[0]  # fmt: skip
    assert rule["window_calls"] == 5 and rule["channel_ids"] == []
    table = cli("alerts", "rules", "list", "--agent", agent)
    assert "score_mean < 0.6 over 5 calls" in table

    alert_id = _raise(alert_stack.engine, org, agent, "knowledge_source:cli")
    assert _deliveries(http, alert_id, admin) == []  # the rule does not match it
    cli("alerts", "rules", "rm", str(rule["id"]), "--agent", agent)
    other = _raise(alert_stack.engine, org, agent, "knowledge_source:cli2")
    await async_wait_for(lambda: len(receiver.on("/cli")) >= 2, timeout=30)
    await async_wait_for(lambda: "sent" in cli("alerts", "show", str(other)), timeout=30)
    shown = json.loads(cli("alerts", "show", str(other), "--json"))
    assert [d["status"] for d in shown["deliveries"]] == ["sent"]
    cli("alerts", "channels", "rm", str(channel["id"]))
    assert json.loads(cli("alerts", "channels", "list", "--json")) == []
