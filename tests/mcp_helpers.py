"""Test helpers for the tool gateway: real MCP servers as subprocesses (streamable HTTP on free
loopback ports, or stdio children found by a marker in their environment) and a gateway harness
over a real database. Every process started here is stopped by its owner (fixture finalizers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from cli.launch import port_open
from connectors.mcp.pool import McpClientPool
from core.db import session_scope
from core.tenancy.schemas import AgentCreate, OrganizationCreate
from core.tenancy.service import TenancyService
from core.tools import repository as tools_repo
from core.tools.gateway import ToolGateway, ToolInvocationRequest
from core.tools.schemas import GatewayResult, McpServerCreate, ToolEnable
from core.tools.service import ToolRegistryService, record_tool_call
from tests.conftest import ADMIN_TOKEN, SECRET_KEY, free_port, loopback_policy, wait_for

ROOT = Path(__file__).resolve().parent.parent
APPOINTMENTS = str(ROOT / "examples" / "mcp_servers" / "appointments.py")
ORDERS = str(ROOT / "examples" / "mcp_servers" / "orders.py")
FAULTY = str(Path(__file__).parent / "fakes" / "mcp_faulty_server.py")
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
MARKER_ENV = "BACKLINE_TEST_MARKER"


class HttpServer:
    """An example MCP server on streamable HTTP, restartable on the same port."""

    def __init__(self, script: str, *args: str) -> None:
        self.script = script
        self.args = args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> HttpServer:
        self.proc = subprocess.Popen(
            [sys.executable, self.script, "--http", str(self.port), *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open("127.0.0.1", self.port), timeout=30, interval=0.05)
        return self

    def kill(self) -> None:
        """Abrupt death (SIGKILL), as a crashed server."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        wait_for(lambda: not port_open("127.0.0.1", self.port), timeout=10, interval=0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def pids_with_marker(marker: str) -> list[int]:
    """Our stdio server children, found by the marker the test put in their environment."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def kill_marked(marker: str) -> int:
    pids = pids_with_marker(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class Harness:
    """One organization and agent, a gateway and its pool, over a real database."""

    def __init__(self, engine: Engine, *, org_calls_per_minute: int = 3000) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.engine = engine
        self.org_id = f"org-{suffix}"
        self.agent_id = f"agent-{suffix}"
        # The servers under test listen on loopback: the operator allow-list admits them.
        self.pool = McpClientPool(
            loopback_policy(), max_reconnect_backoff_s=0.1, connect_timeout_s=10
        )
        self.gateway = ToolGateway(
            engine, self.pool, SECRET_KEY, org_calls_per_minute=org_calls_per_minute
        )
        with session_scope(engine) as session:
            tenancy = TenancyService(session, SECRET_KEY, ADMIN_TOKEN)
            tenancy.create_org(OrganizationCreate(id=self.org_id, name="Tools org"), "test")
            session.flush()
            tenancy.create_agent(self.org_id, AgentCreate(id=self.agent_id, name="Agent"), "test")

    def add_server(self, **fields: Any) -> int:
        with session_scope(self.engine) as session:
            server = ToolRegistryService(session, SECRET_KEY).add_server(
                self.org_id, McpServerCreate(**fields), "test", operator=True
            )
            assert server.id is not None
            return server.id

    async def register(self, **fields: Any) -> int:
        server_id = self.add_server(**fields)
        report = await self.gateway.refresh_server(server_id)
        assert report is not None and report.error is None, report
        return server_id

    def enable(self, ref: str, **overrides: Any) -> str:
        with session_scope(self.engine) as session:
            tenancy = TenancyService(session, SECRET_KEY, ADMIN_TOKEN)
            row = ToolRegistryService(session, SECRET_KEY).enable_tool(
                tenancy.require_agent(self.agent_id), ref, ToolEnable(**overrides), "test"
            )
            name = row.exposed_name
        self.gateway.invalidate(self.agent_id)
        return name

    def request(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        call_id: str | None = "call-1",
        tool_call_id: str | None = None,
        platform: str = "vapi",
        budget_s: float | None = None,
    ) -> ToolInvocationRequest:
        return ToolInvocationRequest(
            org_id=self.org_id,
            agent_id=self.agent_id,
            platform=platform,
            call_id=call_id,
            tool_call_id=tool_call_id or f"tc-{uuid.uuid4().hex[:8]}",
            name=name,
            arguments=arguments,
            budget_s=budget_s,
        )

    def watch_sends(self) -> asyncio.Event:
        """An event set each time the pool hands a tool call to a server's session: from then on
        the call is in flight, so a server killed after it dies under the call."""
        sent = asyncio.Event()
        send = self.pool.call_tool

        async def call_tool(*args: Any, **kwargs: Any) -> Any:
            sent.set()
            return await send(*args, **kwargs)

        self.pool.call_tool = call_tool  # type: ignore[method-assign]
        return sent

    async def call(self, name: str, arguments: dict[str, Any], **kw: Any) -> GatewayResult:
        result = await self.gateway.call(self.request(name, arguments, **kw))
        assert result is not None, f"no gateway tool {name}"
        return result

    def record(self, result: GatewayResult) -> None:
        with session_scope(self.engine) as session:
            record_tool_call(session, SECRET_KEY, result.record)

    async def aclose(self) -> None:
        """Close the pool (stopping stdio children) and unregister this org's servers, so API
        processes started later in the session (they warm every server in use) skip them."""
        await self.gateway.aclose()
        with session_scope(self.engine) as session:
            registry = ToolRegistryService(session)
            for server in tools_repo.list_servers(session, self.org_id):
                registry.remove_server(self.org_id, server.name, "test")


def elapsed_since(t0: float) -> float:
    return time.monotonic() - t0
