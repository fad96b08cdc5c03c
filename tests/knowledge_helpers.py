"""Test helpers for knowledge: a loopback HTTP server that speaks ETag / Last-Modified (and
answers 304s), demo files, a tenant made directly in the database, and a refresh runner that
drives the same service calls the workflow's activities make."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.db import session_scope, utcnow
from core.knowledge.ports import Ingestor, KnowledgeIndex, SourceFetcher
from core.knowledge.schemas import SourceCreate
from core.knowledge.service import IngestOutcome, KnowledgeIndexing, KnowledgeService
from core.ports import Embedder
from core.tenancy.schemas import AgentCreate, OrganizationCreate
from core.tenancy.service import TenancyService

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "knowledge"


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    mtime: float = 1_767_225_600.0  # 2026-01-01

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass
class ServerLog:
    requests: list[dict[str, str | None]] = field(default_factory=list)

    def conditional(self) -> list[dict[str, str | None]]:
        return [r for r in self.requests if r["if_none_match"] or r["if_modified_since"]]


class SiteServer:
    """Serves ``pages`` on ``host`` (127.0.0.1) with validators; ``fail`` makes every GET answer
    503; ``redirects`` maps a path to the Location a 302 sends."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.pages: dict[str, Page] = {}
        self.redirects: dict[str, str] = {}
        self.fail = False
        self.delay_s = 0.0  # a slow origin, to keep a refresh running
        self.log = ServerLog()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                outer.log.requests.append(
                    {"path": self.path, "if_none_match": inm, "if_modified_since": ims,
                     "host": self.headers.get("Host")}
                )  # fmt: skip
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.end_headers()
                    return
                page = outer.pages.get(self.path)
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if outer.fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                if page is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                last_modified = formatdate(page.mtime, usegmt=True)
                if inm == page.etag or (inm is None and ims == last_modified):
                    self.send_response(304)
                    self.send_header("ETag", page.etag)
                    self.end_headers()
                    return
                self.send_response(page.status)
                self.send_header("Content-Type", page.content_type)
                self.send_header("ETag", page.etag)
                self.send_header("Last-Modified", last_modified)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> SiteServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def make_tenant(engine: Engine) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    org_id, agent_id = f"org-{suffix}", f"agent-{suffix}"
    with session_scope(engine) as session:
        svc = TenancyService(session, "test-secret-key", "test-admin-token")
        svc.create_org(OrganizationCreate(id=org_id, name="Test org"), "test")
        svc.create_agent(org_id, AgentCreate(id=agent_id, name="Test agent"), "test")
    return org_id, agent_id


def file_source(name: str, content: bytes, **policy: Any) -> SourceCreate:
    return SourceCreate(
        kind="file",
        name=name,
        filename=name,
        content_base64=base64.b64encode(content).decode(),
        **policy,
    )


def add_source(engine: Engine, org_id: str, agent_id: str, data: SourceCreate) -> str:
    with session_scope(engine) as session:
        return KnowledgeService(session).add_source(org_id, agent_id, data, "test").id


@dataclass
class Refresher:
    """The refresh steps as the workflow's activities run them, without Temporal."""

    engine: Engine
    index: KnowledgeIndex
    embedder: Embedder
    ingestor: Ingestor
    fetcher: SourceFetcher

    def refresh(
        self, source_id: str, at: datetime | None = None, force: bool = False
    ) -> tuple[str, IngestOutcome | None]:
        at = at or utcnow()
        with session_scope(self.engine) as session:
            fetched = KnowledgeIndexing(session, self.index, self.embedder).fetch(
                source_id, self.fetcher, at, force=force
            )
        outcome = None
        if fetched.status == "changed":
            assert fetched.content_hash is not None
            with session_scope(self.engine) as session:
                svc = KnowledgeIndexing(session, self.index, self.embedder)
                outcome = svc.ingest(source_id, fetched.content_hash, self.ingestor, force=force)
            for ops in svc.apply_pending_index():
                with session_scope(self.engine) as session:
                    KnowledgeService(session).clear_outbox(ops.source_id, ops.token)
        with session_scope(self.engine) as session:
            KnowledgeService(session).mark_fresh(source_id, at)
        return fetched.status, outcome
