"""Walks every route of the running API against what docs/routes.md says about who may call it:
a route that needs a credential refuses a request without one (401), and an operator-only
route refuses an organization's admin key (403)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Stack
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]

PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
NEEDS_CREDENTIAL = {"operator", "admin", "content", "release", "viewer", "content or release"}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, op["x-backline-auth"])
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    ]


def _fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values.get(m.group(1), "1"), path)


async def test_every_route_that_needs_a_credential_refuses_anonymous_callers(
    stack: Stack,
) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        schema = http.get("/openapi.json").json()
        values = {"agent_id": tenant.agent_id, "org_id": tenant.org_id}
        checked = 0
        for method, path, who in _operations(schema):
            if who not in NEEDS_CREDENTIAL:
                continue
            r = http.request(method, _fill(path, values), json={})
            assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text[:200]}"
            assert r.json()["error"] == "AuthenticationError"
            checked += 1
        assert checked >= 50


async def test_operator_routes_refuse_an_organization_admin(stack: Stack) -> None:
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(
            f"/v1/orgs/{tenant.org_id}/keys",
            json={"name": "walk", "scopes": ["admin"]},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        key = {"Authorization": f"Bearer {r.json()['token']}"}
        schema = http.get("/openapi.json").json()
        operator_routes = [(m, p) for m, p, who in _operations(schema) if who == "operator"]
        assert operator_routes
        for method, path in operator_routes:
            values = {"agent_id": tenant.agent_id, "org_id": tenant.org_id}
            r = http.request(method, _fill(path, values), json={}, headers=key)
            assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text[:200]}"


@pytest.fixture
def stack_settings() -> dict[str, Any]:
    # The walk sends dozens of unauthenticated requests from one address on purpose.
    return {"auth_failures_per_minute": 10_000}


async def test_a_key_without_the_declared_scope_is_refused_before_validation(
    stack: Stack,
) -> None:
    """Every route declaring a scope above viewer refuses a viewer key of the owning
    organization with 403, even for a body that would not validate."""
    with stack.http() as http:
        tenant = create_tenant(http)
        r = http.post(
            f"/v1/orgs/{tenant.org_id}/keys",
            json={"name": "walk", "scopes": ["viewer"]},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        viewer = {"Authorization": f"Bearer {r.json()['token']}"}
        schema = http.get("/openapi.json").json()
        values = {"agent_id": tenant.agent_id, "org_id": tenant.org_id}
        checked = 0
        for method, path, who in _operations(schema):
            if who not in {"operator", "admin", "content", "release", "content or release"}:
                continue
            if "{source_id}" in path:
                continue  # no source exists in this organization: the 403 is the tenant guard's
            r = http.request(method, _fill(path, values), json={"unexpected": True}, headers=viewer)
            assert r.status_code == 403, f"{method} {path}: {r.status_code} {r.text[:200]}"
            checked += 1
        assert checked >= 25
