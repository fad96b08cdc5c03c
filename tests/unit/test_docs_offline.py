"""``/docs`` is served without a CDN: the Swagger UI page references only this server's own
assets, and those assets are served (from the installed swagger-ui-bundle-v2 package)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import make_settings


def test_docs_page_loads_swagger_ui_from_this_server(tmp_path: Path) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path))
    client = TestClient(app)  # no lifespan: the docs need none
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *["']([^"']+)["']""", page.text)
    referenced = [u for pair in urls for u in pair if u]
    assert referenced, page.text
    assert all(u.startswith("/") for u in referenced), referenced  # nothing from a CDN
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "Backline"
    assert client.get("/redoc").status_code == 404  # it would load from a CDN
