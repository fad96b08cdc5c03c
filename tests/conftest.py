"""Shared test fixtures: a real Postgres database per run, SQLite per test, the real Temporal
dev server, the real MiniLM embedder, the API served over real HTTP and an in-process worker.

Each run creates and drops its own Postgres database; tenants are unique per test so tests do
not see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy.engine import Engine
from temporalio import workflow
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "1")
# One ONNX export of MiniLM serves every test run and every process a test starts.
os.environ.setdefault("BACKLINE_MODEL_DIR", str(Path(tempfile.gettempdir()) / "backline-models"))

from activities.post_call import PostCallActivities
from api.main import create_app
from cli.launch import TEMPORAL_DEV_FLAGS, temporal_binary
from cli.ops import migrate
from cli.worker import WORKFLOWS, build_eval_activities, worker_for
from connectors.embedder import MiniLMEmbedder, shared_embedder
from connectors.vectors.embedded import EmbeddedVectorStore
from core.db import make_engine
from core.egress import EgressPolicy, egress_policy
from core.memory.ports import CallAnalyzer
from core.settings import Settings
from orchestration.codec import data_converter_for
from orchestration.post_call_types import PostCallResult

PG_HOST = os.environ.get("BACKLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BACKLINE_TEST_PG_PORT", "5432"))
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
FIXTURES = Path(__file__).parent / "fixtures"
SECRET_KEY = "test-secret-key"
# The operator allow-list tests set when their own servers (MCP, web pages) listen on loopback.
LOOPBACK_ALLOWED = "127.0.0.1"
ADMIN_TOKEN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> Any:
    """Poll until ``predicate`` returns something truthy; fail with a clear message naming
    ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s (last value: {last!r})")


async def async_wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(predicate)
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


async def post_call_result(client: Client, workflow_id: str, timeout: float = 60) -> PostCallResult:
    """The result of a post-call workflow an end-of-call reply named. The reply comes back once
    the report is in the inbox, before the API's drainer has started the workflow, so the id
    may be unknown to Temporal for a moment: wait for it to exist, then for its result."""
    deadline = time.monotonic() + timeout
    handle = client.get_workflow_handle(workflow_id, result_type=PostCallResult)
    while True:
        try:
            await handle.describe()
            break
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
    return await asyncio.wait_for(handle.result(), max(deadline - time.monotonic(), 1.0))


# -- databases -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"backline_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"Postgres is not reachable at {PG_HOST}:{PG_PORT} ({exc}); `make test` starts it, "
            "or set BACKLINE_TEST_PG_HOST/PORT"
        )
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    migrate(url)
    yield url
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.close()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'backline.db'}"
    migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The store layer runs on both databases."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        engine = make_engine(url)
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("pg_engine")


# -- embedder ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    emb = shared_embedder()
    emb.warm_up()
    return emb


# -- Temporal ------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-histories",
        metavar="DIR",
        default=None,
        help="when the session ends, write one completed history of each workflow the tests "
        "ran into DIR (see tests/record_histories.py)",
    )


def temporal_test_converter() -> DataConverter:
    """The same codec the API and worker derive from the test settings' SECRET_KEY."""
    return data_converter_for(Settings(secret_key=SECRET_KEY))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=temporal_test_converter(),
        dev_server_existing_path=temporal_binary(),
        port=free_port(),
        dev_server_extra_args=TEMPORAL_DEV_FLAGS,
    )
    yield env
    out = request.config.getoption("--record-histories")
    if out:
        from tests.record_histories import record_histories

        kinds = {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}
        await record_histories(env.client, Path(out), kinds)
    await env.shutdown()


def temporal_address(env: WorkflowEnvironment) -> str:
    return str(env.client.service_client.config.target_host)


# -- settings, API and worker --------------------------------------------------------------


def loopback_policy() -> EgressPolicy:
    """The egress policy of an operator who set ``BACKLINE_EGRESS_ALLOW=127.0.0.1``."""
    return egress_policy(Settings(egress_allow=LOOPBACK_ALLOWED))


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_path,
        "secret_key": SECRET_KEY,
        "admin_token": ADMIN_TOKEN,
        "task_queue": f"test-{uuid.uuid4().hex[:10]}",
    }
    values.update(overrides)
    return Settings(**values)


class ApiServer:
    """The real app served by uvicorn on a free port, in a background thread."""

    def __init__(self, settings: Settings, embedder: MiniLMEmbedder) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(settings, embedder=embedder)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                timeout_keep_alive=settings.api_keep_alive_s,
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        wait_for(lambda: self._server.started, timeout=60)
        wait_for(lambda: self._app_state().temporal is not None, timeout=30)
        return self

    def _app_state(self) -> Any:
        return self._server.config.loaded_app.app.state.backline  # type: ignore[union-attr]

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


@dataclass
class Stack:
    settings: Settings
    engine: Engine
    api: ApiServer
    client: Client
    eval_ports: dict[str, Any] = field(default_factory=dict)

    def restart_api(self, embedder: MiniLMEmbedder) -> None:
        self.api.stop()
        self.api = ApiServer(self.settings, embedder).start()

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api.url, timeout=30)


def build_activities(
    settings: Settings, engine: Engine, embedder: MiniLMEmbedder, analyzer: CallAnalyzer | None
) -> PostCallActivities:
    return PostCallActivities(
        engine=engine,
        secret_key=settings.secret_key.get_secret_value(),
        embedder=embedder,
        vectors=EmbeddedVectorStore(engine),
        analyzer=analyzer,
    )


def make_worker(
    client: Client, settings: Settings, activities: PostCallActivities, executor: ThreadPoolExecutor
) -> Worker:
    return worker_for(client, settings.task_queue, [activities], executor)


@pytest.fixture
def stack_settings() -> dict[str, Any]:
    """Settings overrides for ``stack``; a test module overrides this fixture to change them
    (e.g. ``egress_allow`` when its servers listen on loopback)."""
    return {}


@contextlib.asynccontextmanager
async def running_stack(
    url: str,
    engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
    overrides: dict[str, Any],
) -> AsyncIterator[Stack]:
    """API over HTTP + a worker on a fresh task queue, on ``url``'s database and the Temporal
    dev server."""
    settings = make_settings(
        url, tmp_path, temporal_address=temporal_address(temporal_env), **overrides
    )
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    activities = build_activities(settings, engine, embedder, analyzer=None)
    # Eval cases run with the adapters a test puts in ``Stack.eval_ports["ports"]`` (none: every
    # case is recorded as an error, as on a worker without an agent runtime).
    eval_hook: dict[str, Any] = {}
    evals = build_eval_activities(
        settings,
        engine,
        lambda agent: eval_hook["ports"](agent) if "ports" in eval_hook else None,
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = worker_for(temporal_env.client, settings.task_queue, [activities, evals], executor)
        async with worker:
            s = Stack(
                settings=settings,
                engine=engine,
                api=api,
                client=temporal_env.client,
                eval_ports=eval_hook,
            )
            yield s
            await asyncio.to_thread(s.api.stop)


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    pg_url: str,
    pg_engine: Engine,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
    stack_settings: dict[str, Any],
) -> AsyncIterator[Stack]:
    """API over HTTP + a worker on a fresh task queue, on Postgres and the Temporal dev server."""
    async with running_stack(
        pg_url, pg_engine, temporal_env, embedder, tmp_path, stack_settings
    ) as s:
        yield s


@pytest_asyncio.fixture(loop_scope="session")
async def sqlite_stack(
    sqlite_url: str,
    temporal_env: WorkflowEnvironment,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
    stack_settings: dict[str, Any],
) -> AsyncIterator[Stack]:
    """``stack`` on the embedded default's database: a SQLite file shared by API and worker."""
    engine = make_engine(sqlite_url)
    try:
        async with running_stack(
            sqlite_url, engine, temporal_env, embedder, tmp_path, stack_settings
        ) as s:
            yield s
    finally:
        engine.dispose()
