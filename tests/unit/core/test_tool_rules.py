"""Tool-gateway rules that need no server: naming, schemas, argument checks, result mapping,
idempotency keys, rate limits and the Prometheus rendering."""

from __future__ import annotations

from core.tools.gateway import ToolInvocationRequest, ledger_key
from core.tools.metrics import ToolMetrics, render_prometheus
from core.tools.ports import DiscoveredTool, RawToolResult, ServerSpec
from core.tools.ratelimit import RateLimitPolicy
from core.tools.results import (
    MAX_RESULT_CHARS,
    argument_error,
    compile_validator,
    result_text,
    to_outcome,
)
from core.tools.service import (
    exposed_name,
    is_idempotent,
    platform_parameters,
    wants_idempotency_key,
)

REFUND_SCHEMA = {
    "type": "object",
    "title": "refund_orderArguments",
    "properties": {
        "order_id": {"type": "string"},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "idempotency_key": {"type": "string", "minLength": 8},
    },
    "required": ["order_id", "idempotency_key"],
}


def test_exposed_names_take_the_prefix_and_only_characters_platforms_accept() -> None:
    assert exposed_name(None, "list_slots") == "list_slots"
    assert exposed_name("crm", "contacts.search/v2") == "crm_contacts_search_v2"
    assert len(exposed_name("p", "x" * 100)) == 64


def test_platform_parameters_hide_the_gateway_supplied_idempotency_key() -> None:
    params = platform_parameters(REFUND_SCHEMA)
    assert set(params["properties"]) == {"order_id", "amount"}
    assert params["required"] == ["order_id"]
    assert "title" not in params
    assert REFUND_SCHEMA["properties"]["idempotency_key"]  # the input is not mutated
    assert wants_idempotency_key(REFUND_SCHEMA)
    assert platform_parameters({"type": "object"}) == {"type": "object", "properties": {}}


def test_idempotent_means_the_override_else_the_read_only_or_idempotent_hint() -> None:
    read = DiscoveredTool("a", "", {}, read_only=True)
    write = DiscoveredTool("b", "", {}, destructive=True)
    assert is_idempotent(read, None) and not is_idempotent(write, None)
    assert is_idempotent(write, True) and not is_idempotent(read, False)
    assert is_idempotent(DiscoveredTool("c", "", {}, idempotent=True), None)


def test_arguments_that_do_not_fit_the_schema_get_an_explanation() -> None:
    validator = compile_validator(REFUND_SCHEMA)
    ok = {"order_id": "1042", "idempotency_key": "k" * 10}
    assert argument_error("refund_order", validator, ok) is None
    missing = argument_error("refund_order", validator, {"idempotency_key": "k" * 10})
    assert missing is not None and "'order_id' is a required property" in missing
    wrong = argument_error("refund_order", validator, {**ok, "amount": "lots"})
    assert wrong is not None and "(at 'amount')" in wrong and "refund_order" in wrong


def test_an_unusable_schema_validates_nothing_instead_of_blocking_calls() -> None:
    validator = compile_validator({"type": "no-such-type"})
    assert validator is None
    assert argument_error("t", validator, {"anything": 1}) is None


def test_results_become_one_compact_string() -> None:
    raw = RawToolResult(texts=('{\n  "slot": "09:00",\n  "ok": true\n}',))
    assert result_text(raw) == '{"slot":"09:00","ok":true}'
    structured = RawToolResult(structured={"n": 3})
    assert result_text(structured) == '{"n":3}'
    mixed = RawToolResult(texts=("Here you go.",), other_content=("image", "image"))
    assert result_text(mixed) == "Here you go. [image content omitted]"
    assert result_text(RawToolResult()) == "(the tool returned no content)"
    assert len(result_text(RawToolResult(texts=("x" * 20_000,)))) == MAX_RESULT_CHARS
    assert to_outcome(RawToolResult(texts=("slot taken",), is_error=True)).error == "slot taken"


def _req(**kw: object) -> ToolInvocationRequest:
    values: dict[str, object] = {
        "org_id": "o",
        "agent_id": "a",
        "platform": "retell",
        "call_id": "c1",
        "tool_call_id": "refund_order@c1",
        "name": "refund_order",
        "arguments": {"order_id": "1042", "amount": 10},
    }
    values.update(kw)
    return ToolInvocationRequest(**values)  # type: ignore[arg-type]


def test_a_retry_of_the_same_tool_call_has_the_same_idempotency_key() -> None:
    key = ledger_key(_req())
    assert key == ledger_key(_req(arguments={"amount": 10, "order_id": "1042"}))
    assert key != ledger_key(_req(tool_call_id="other"))
    assert key != ledger_key(_req(call_id="c2"))
    # Retell reuses one tool call id per function and call: different arguments, new key.
    assert key != ledger_key(_req(arguments={"order_id": "1043", "amount": 10}))


def test_rate_limits_refuse_per_tool_then_per_org_without_counting_refusals() -> None:
    limits = RateLimitPolicy(org_calls_per_minute=3)
    assert limits.acquire("org", "s:t", 2) is None
    assert limits.acquire("org", "s:t", 2) is None
    assert limits.acquire("org", "s:t", 2) == "tool"
    assert limits.acquire("org", "s:other", 2) is None
    assert limits.acquire("org", "s:other", 2) == "org"
    assert limits.usage("org")["remaining"] == 0
    assert limits.usage("org", "s:other", 2)["remaining"] == 1
    assert limits.acquire("another-org", "s:t", 2) is None


def test_server_fingerprints_change_with_secrets_without_revealing_them() -> None:
    a = ServerSpec(1, "x", "http", url="http://h/mcp", headers={"X-Key": "secret-1"})
    b = ServerSpec(1, "x", "http", url="http://h/mcp", headers={"X-Key": "secret-2"})
    assert a.fingerprint() != b.fingerprint()
    assert "secret-1" not in a.fingerprint() and "secret-1" not in repr(a)


def test_prometheus_rendering_has_counts_latency_and_breaker_state() -> None:
    metrics = ToolMetrics()
    metrics.observe("org", "list_slots", "ok", 3.0)
    metrics.observe("org", "list_slots", "timeout", 900.0)
    metrics.observe("elsewhere", "secret_tool", "ok", 1.0)
    text = render_prometheus("org", metrics, {"appointments": {"state": "open", "opens_total": 2}})
    assert 'backline_tool_calls_total{org="org",tool="list_slots",status="timeout"} 1' in text
    assert 'backline_tool_latency_ms{org="org",tool="list_slots",quantile="0.5"}' in text
    assert 'backline_tool_breaker_state{org="org",server="appointments"} 2' in text
    assert "secret_tool" not in text
