"""The Knowledge page rendered by streamlit's AppTest against a migrated SQLite file: freshness
judged at read time, chunk counts, retrieval latency, and a refresh button that calls the API
(a loopback stand-in records the request)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from cli.ops import migrate
from core.calls.models import CallEvent
from core.db import make_engine, utcnow
from core.knowledge.models import KnowledgeBase, KnowledgeSource
from core.monitoring.models import Alert
from core.tenancy.models import Agent, Organization

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
PAGE = "app_pages/knowledge.py"
TIMEOUT_S = 60


def _seed(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    now = utcnow()
    with Session(engine) as s:
        s.add(Organization(id="org-acme", name="Acme"))
        s.flush()  # the agent's foreign key needs the organization first
        s.add(Agent(id="demo", org_id="org-acme", name="Acme Home Services"))
        s.add(KnowledgeBase(id="kb_1", org_id="org-acme", agent_id="demo", name="default"))
        common: dict[str, Any] = {"org_id": "org-acme", "agent_id": "demo", "kb_id": "kb_1"}
        s.add(KnowledgeSource(id="src_fresh", kind="file", name="hours.md", chunk_count=5,
                              document_count=5, verified_at=now - timedelta(hours=1),
                              last_attempt_at=now - timedelta(hours=1), max_staleness_s=86400,
                              status="fresh", **common))  # fmt: skip
        s.add(KnowledgeSource(id="src_failing", kind="url", name="prices page",
                              url="https://acme.example/prices", chunk_count=9, document_count=8,
                              verified_at=now - timedelta(hours=2), failure_count=2,
                              last_error="fetch: GET answered HTTP 503",
                              last_attempt_at=now - timedelta(minutes=5), max_staleness_s=86400,
                              status="failing", **common))  # fmt: skip
        # Marked fresh in the row, but past its staleness now: the page must say stale.
        s.add(KnowledgeSource(id="src_stale", kind="file", name="old-promo.md", chunk_count=2,
                              document_count=1, verified_at=now - timedelta(days=40),
                              last_attempt_at=now - timedelta(days=40),
                              max_staleness_s=30 * 86400, status="fresh", **common))  # fmt: skip
        s.add(Alert(org_id="org-acme", agent_id="demo", kind="knowledge_source_failing",
                    message="Knowledge source 'prices page' could not be refreshed (fetch)",
                    subject="knowledge_source:src_failing"))  # fmt: skip
        s.add(Alert(org_id="org-acme", agent_id="demo", kind="knowledge_source_stale",
                    message="resolved long ago", state="resolved", resolved_at=now))  # fmt: skip
        s.add(Alert(org_id="org-acme", agent_id="demo", kind="prompt_rollout_rollback",
                    severity="critical", message="rollout of v3 rolled back"))  # fmt: skip
        for i, latency in enumerate([4.2, 5.1, 3.9, 12.5]):
            s.add(CallEvent(org_id="org-acme", agent_id="demo", platform="vapi",
                            platform_call_id=f"call-{i}", type="knowledge_request",
                            platform_type="knowledge_request", at=now - timedelta(minutes=i),
                            data={"via": "knowledge_request", "status": "ok", "latency_ms": latency,
                                  "chunk_ids": ["a", "b"], "withheld": [],
                                  "query": "are you open on thanksgiving"}))  # fmt: skip
        s.commit()
    engine.dispose()


class _FakeApi:
    """Records POSTs and answers like the real refresh route."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests.append((self.path, self.headers.get("Authorization")))
                body = json.dumps({"source_id": "x", "workflow_id": "kb-refresh-x",
                                   "run_id": "r", "joined_running": False}).encode()  # fmt: skip
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def knowledge_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeApi]:
    url = f"sqlite:///{tmp_path / 'backline.db'}"
    _seed(url)
    api = _FakeApi()
    monkeypatch.setenv("BACKLINE_DATABASE_URL", url)
    monkeypatch.setenv("BACKLINE_API_URL", api.url)
    monkeypatch.setenv("BACKLINE_API_KEY", "content-key-123")
    yield api
    api.close()


def _open() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_sources_show_freshness_judged_now_with_counts_and_errors(
    knowledge_db: _FakeApi,
) -> None:
    at = _open()
    assert at.title[0].value == "Knowledge"
    table: pd.DataFrame = at.get_by_key("sources_table").dataframe[0].value
    states = dict(zip(table["name"], table["freshness"], strict=True))
    assert states == {"hours.md": "fresh", "prices page": "failing", "old-promo.md": "stale"}
    assert dict(zip(table["name"], table["chunks"], strict=True))["prices page"] == 9
    assert "503" in table.set_index("name").loc["prices page", "last_error"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Fresh": "1", "Failing": "1", "Stale": "1", "Chunks": "16"}
    warnings = [w.value for w in at.warning]
    assert any("old-promo.md (stale)" in w for w in warnings), warnings
    assert len(at.get("plotly_chart")) == 2
    latencies: pd.DataFrame = at.get_by_key("retrievals_table").dataframe[0].value
    assert sorted(latencies["latency_ms"]) == [3.9, 4.2, 5.1, 12.5]
    assert "p50 4.7 ms" in at.caption[0].value


def test_refresh_button_posts_to_the_api_with_the_key(knowledge_db: _FakeApi) -> None:
    at = _open()
    at.selectbox(key="refresh_source").select("src_failing").run()
    at.button(key="refresh_now").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert knowledge_db.requests == [
        ("/v1/knowledge/sources/src_failing/refresh", "Bearer content-key-123")
    ]
    assert "Refresh started" in at.success[0].value


def test_page_explains_an_empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(url)
    monkeypatch.setenv("BACKLINE_DATABASE_URL", url)
    at = _open()
    assert "backline kb add" in at.info[0].value


def test_open_knowledge_alerts_show_on_the_knowledge_page_only(knowledge_db: _FakeApi) -> None:
    at = _open()
    shown = [w.value for w in at.warning] + [e.value for e in at.error]
    failing = [w for w in shown if "knowledge_source_failing" in w]
    assert len(failing) == 1 and "(firing)" in failing[0] and "prices page" in failing[0]
    assert not any("resolved long ago" in w for w in shown)
    assert not any("prompt_rollout_rollback" in w for w in shown)  # the Prompts page's
