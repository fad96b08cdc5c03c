"""The real dashboard in a real browser: `streamlit run` against a seeded SQLite file, driven by
headless Chromium through Playwright.

Each page must render its real content (heading, tables, plotly charts) with no Streamlit
exception box and no raw phone number. Screenshots land in the test's tmp dir for a human look.
The server is a subprocess this test starts and always stops.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import wait_for
from tests.dashboard.seed import MARIA, OLIVER, seed_database

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MARIA_LABEL = "+1••••••0123 · 2 calls"
SERVER_START_S = 60.0
RENDER_MS = 60_000
# (url path, page heading, keyed table container, the page's last section, plotly charts)
PAGES = [
    ("", "Calls", "calls_table", "Call trace", 3),
    ("memory", "Memory", "fact_history", "Call summaries", 1),
    ("overview", "Overview", "overview_daily", "Calls behind a point", 4),
    ("evals", "Evals", "eval_runs", "Transcript", 1),
    ("quality", "Quality & Drift", "quality_calls", "Calls behind a point", 5),
    ("traces", "Traces", "trace_timeline", "Regression scenario", 1),
    ("tools", "Tools", "tools_summary", "Failed tool calls", 2),
    ("alerts", "Alerts", "alerts_table", "Deliveries", 1),
]
SHOTS = ["alerts.png", "calls.png", "evals.png", "memory.png", "overview.png", "quality_drift.png",
         "tools.png", "traces.png"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[str]:
    db_url = f"sqlite:///{tmp_path / 'backline.db'}"
    seed_database(db_url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    env = {**os.environ, "BACKLINE_DATABASE_URL": db_url}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(APP),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: _healthy(base, proc, log),
                SERVER_START_S,
                interval=0.2,
                what="streamlit server ready",
            )
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _assert_page_renders(page: Page, heading: str, table: str, last: str, charts: int) -> None:
    page.locator("h1", has_text=heading).first.wait_for(timeout=RENDER_MS)
    # The last section renders only after everything above it ran without raising.
    page.locator("h3", has_text=last).first.wait_for(timeout=RENDER_MS)
    page.locator(f".st-key-{table} [data-testid='stDataFrame']").wait_for(timeout=RENDER_MS)
    plots = page.locator(".js-plotly-plot")
    wait_for(
        lambda: plots.count() >= charts,
        RENDER_MS / 1000,
        interval=0.2,
        what=f"{charts} plotly charts rendered",
    )
    assert page.locator('[data-testid="stException"]').count() == 0
    body = page.inner_text("body")
    assert MARIA not in body and OLIVER not in body


def _choose_caller_with_history(page: Page) -> None:
    """Pick the two-call caller through the real select box; their context must follow."""
    page.get_by_test_id("stSelectbox").filter(has_text="Caller").click()
    page.get_by_role("option", name=MARIA_LABEL).click()
    page.get_by_text("Maria moved her cleaning to Thursday").first.wait_for(timeout=RENDER_MS)
    page.locator("h3", has_text="Call summaries").first.wait_for(timeout=RENDER_MS)
    assert page.locator('[data-testid="stException"]').count() == 0


def _make_regression_scenario(page: Page) -> None:
    """The Traces page's button shows the scenario YAML built from the stored call."""
    page.get_by_role("button", name="Make this a regression scenario").click()
    page.locator("code", has_text="tags:").first.wait_for(timeout=RENDER_MS)
    assert page.locator('[data-testid="stException"]').count() == 0


def _shot_name(heading: str) -> str:
    return heading.lower().replace(" & ", "_").replace(" ", "_") + ".png"


def test_every_page_renders_in_a_real_browser(dashboard: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            # Streamlit scrolls an inner element, so a full-page shot is only as tall as the
            # viewport: make it tall enough to hold a whole page.
            page = browser.new_page(viewport={"width": 1440, "height": 2600})
            for path, heading, table, last, charts in PAGES:
                page.goto(f"{dashboard}/{path}", wait_until="domcontentloaded")
                _assert_page_renders(page, heading, table, last, charts)
                if heading == "Memory":
                    _choose_caller_with_history(page)
                if heading == "Traces":
                    _make_regression_scenario(page)
                page.screenshot(path=str(shots / _shot_name(heading)), full_page=True)
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == SHOTS


def test_a_chart_point_lists_its_calls_and_links_to_traces(dashboard: str, tmp_path: Path) -> None:
    """Clicking a bar of the Overview's calls-per-day chart lists the calls of that day and
    version; their link opens the call in Traces."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2600})
            page.goto(f"{dashboard}/overview", wait_until="domcontentloaded")
            _assert_page_renders(page, "Overview", "overview_daily", "Calls behind a point", 4)
            chart = page.locator(".st-key-chart_overview_calls .js-plotly-plot")
            bar = chart.locator("g.trace.bars path").first.bounding_box()
            assert bar is not None
            # Plotly's drag layer sits over the bars: click where the bar is, as a person does.
            page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
            page.get_by_text("Selected on the chart:").first.wait_for(timeout=RENDER_MS)
            behind = page.locator(".st-key-overview_calls_behind [data-testid='stDataFrame']")
            behind.wait_for(timeout=RENDER_MS)
            page.screenshot(path=str(tmp_path / "overview_selected.png"), full_page=True)
            page.get_by_role("link", name="Open in Traces").click()
            page.locator("h1", has_text="Traces").first.wait_for(timeout=RENDER_MS)
            page.locator("h3", has_text="Regression scenario").first.wait_for(timeout=RENDER_MS)
            assert "call=" in page.url
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()


@pytest.fixture
def api_docs(tmp_path: Path) -> Iterator[str]:
    """The real API app served by uvicorn (no lifespan: ``/docs`` needs no database)."""
    import threading

    import uvicorn

    from api.main import create_app
    from tests.conftest import make_settings

    port = _free_port()
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'api.db'}", tmp_path))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, SERVER_START_S, interval=0.2, what="API server started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_api_docs_render_their_operations_with_no_network(api_docs: str, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2600})

            def _air_gap(route: Any) -> None:
                # As on an air-gapped machine: anything not served by this API fails.
                if route.request.url.startswith(api_docs):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", _air_gap)
            page.goto(f"{api_docs}/docs", wait_until="domcontentloaded")
            page.locator(".opblock").first.wait_for(timeout=RENDER_MS)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            browser.close()
    flat = [p.replace("\u200b", "") for p in paths]
    assert "/v1/orgs/{org_id}/alerts" in flat and "/v1/knowledge/search" in flat, flat[:20]
    assert len(flat) > 50
    assert outside == []
