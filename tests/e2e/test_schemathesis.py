"""Property-based checks of the whole HTTP API against its own OpenAPI description.

schemathesis generates requests for every operation (valid and invalid data, random and real
ids) and runs every check it has: no server errors, bodies that match the documented schemas,
only documented status codes and content types. It runs twice: as an admin of the org that
owns the agent, and as a viewer of ANOTHER org (who must learn nothing about the first).
Only operator commands (routes declared `operator`, and the codec sign-in) are left out.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from temporalio.testing import WorkflowEnvironment

from connectors.embedder import MiniLMEmbedder
from tests.conftest import ApiServer, make_settings, temporal_address
from tests.helpers import ADMIN, create_tenant

pytestmark = [pytest.mark.postgres, pytest.mark.temporal]
EXAMPLES = 25
# Operator commands are left out: routes declared ``operator`` in their OpenAPI (organizations,
# the Temporal codec) and the operator's own browser sign-in for the codec.
OPERATOR_SIGN_IN = "/v1/temporal/codec/login"


def _operator_only(operation: Any) -> bool:
    declared = operation.definition.raw.get("x-backline-auth")
    return bool(declared == "operator" or operation.path == OPERATOR_SIGN_IN)


# Every check runs. One is told about 422: a schema-valid body may still break a rule JSON Schema
# cannot state (one field required when another is absent, a credential kind that belongs to
# another platform, a state such as "no version is labelled production"); such rules answer
# 422 with the field named, as docs/routes.md documents.
TIMES: dict[str, float] = defaultdict(float)
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429", "5xx"]
            }
        }
    }
)


def _key(http: Any, org_id: str, scopes: list[str]) -> str:
    r = http.post(f"/v1/orgs/{org_id}/keys", json={"name": "fuzz", "scopes": scopes}, headers=ADMIN)
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def _run(
    schema: schemathesis.BaseSchema, base_url: str, token: str, known: dict[str, str]
) -> tuple[int, int, dict[str, str]]:
    """Every operation with EXAMPLES cases per generation mode; (operations, cases, failures)."""
    failures: dict[str, str] = {}
    operations = cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # a schema error fails here
        if _operator_only(operation):
            continue
        operations += 1
        names = {p.name for p in operation.path_parameters}
        real = {k: v for k, v in known.items() if k in names}
        strategies = [operation.as_strategy(mode) for mode in GenerationMode]
        if real:
            strategies += [
                operation.as_strategy(mode, path_parameters=real) for mode in GenerationMode
            ]
        # /healthz documents its 503 (not ready yet): a state report, not a server error.
        excluded = [not_a_server_error] if operation.path == "/healthz" else []
        began = time.monotonic()
        seen = _count(operation, strategies, base_url, token, excluded)
        TIMES[f"{operation.method.upper()} {operation.path}"] += time.monotonic() - began
        if isinstance(seen, str):
            failures[f"{operation.method.upper()} {operation.path}"] = seen
            continue
        cases += seen
    return operations, cases, failures


def _summary(exc: BaseException) -> str:
    """The findings of one operation, without schemathesis's reproduction boilerplate.

    Anything else (a failure hypothesis could not reproduce, a dropped connection) is reported by
    its type and message, sub-exceptions included, so no failure is ever reported blank.
    """
    keep = ("- ", "Received:", "Documented:", "`", "curl ")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith(keep)]
    if lines:
        return "\n".join(ln[:400] for ln in lines)
    return _describe(exc)[:3000]


def _describe(exc: BaseException, depth: int = 0) -> str:
    text = "  " * depth + "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, BaseExceptionGroup):
        text += "".join("\n" + _describe(sub, depth + 1) for sub in exc.exceptions)
    return text


def _count(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    strategies: list[Any],
    base_url: str,
    token: str,
    excluded: list[Any],
) -> int | str:
    """Run the cases of one operation: how many ran, or the findings."""
    seen = Counter[str]()

    @hypothesis.settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=st.one_of(strategies))
    def check(case: schemathesis.Case[Any]) -> None:
        seen["n"] += 1
        case.call_and_validate(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            excluded_checks=excluded,
        )

    try:
        check()
    except (Exception, BaseExceptionGroup) as exc:  # every operation's findings, not the first
        return _summary(exc)
    return seen["n"]


async def test_every_operation_honours_its_openapi_contract(
    pg_url: str, temporal_env: WorkflowEnvironment, embedder: MiniLMEmbedder, tmp_path: Path
) -> None:
    # schemathesis also sends requests without the key (to check that auth is enforced): the
    # auth-failure limit is raised so those do not turn into 429s for the rest of the run.
    settings = make_settings(
        pg_url,
        tmp_path,
        temporal_address=temporal_address(temporal_env),
        auth_failures_per_minute=1_000_000,
    )
    api = await asyncio.to_thread(lambda: ApiServer(settings, embedder).start())
    try:
        report = await asyncio.to_thread(_fuzz, api.url)
    finally:
        await asyncio.to_thread(api.stop)
    found = {f"{r}: {op}": msg for r, v in report.items() for op, msg in v[2].items()}
    assert not found, "\n\n".join(f"{k}\n{v}" for k, v in found.items())
    assert all(v[1] >= v[0] * EXAMPLES for v in report.values())


def _fuzz(url: str) -> dict[str, tuple[int, int, dict[str, str]]]:
    with httpx.Client(base_url=url, timeout=30) as http:
        tenant = create_tenant(http)
        other = create_tenant(http)
        admin = _key(http, tenant.org_id, ["admin"])
        outsider = _key(http, other.org_id, ["viewer"])
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
    known = {"agent_id": tenant.agent_id, "org_id": tenant.org_id}
    started = time.monotonic()
    report: dict[str, tuple[int, int, dict[str, str]]] = {}
    roles = {"admin": admin, "other-org viewer": outsider}
    # One role after the other: hypothesis imports some strategy modules lazily, and two threads
    # importing one of them at once can see it half-initialised (an ImportError, not a finding).
    report = {role: _run(schema, url, token, known) for role, token in roles.items()}
    elapsed = time.monotonic() - started
    print(f"schemathesis: {elapsed:.1f}s", {r: v[:2] for r, v in report.items()})
    print(sorted(TIMES.items(), key=lambda kv: -kv[1])[:12])
    return report
