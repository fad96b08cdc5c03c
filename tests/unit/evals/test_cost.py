"""Eval costs: a case's token usage from its turns, priced per model; unknown (never guessed)
when usage was not reported or a model has no price; the run's cost line and cap in reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from core.evals.pricing import Price, PriceTable, case_cost, eval_prices
from core.evals.schemas import EvalRunCreate
from core.settings import Settings
from evals.reports import cost_line, html_report, junit_xml
from evals.runner import usage_metrics


@dataclass
class Turn:
    model: str | None
    usage: Any
    usage_reported: bool = True
    tool_calls: list[Any] = field(default_factory=list)


def test_usage_is_summed_per_model() -> None:
    m = usage_metrics(
        [
            Turn("a", {"prompt_tokens": 100, "completion_tokens": 10}),
            Turn("b", {"prompt_tokens": 50, "completion_tokens": 5}),
            Turn("a", {"prompt_tokens": 200, "completion_tokens": 20}),
        ]  # type: ignore[list-item]
    )
    assert m["tokens_by_model"] == {"a": [300, 30], "b": [50, 5]}
    assert (m["prompt_tokens"], m["completion_tokens"], m["usage_unknown_turns"]) == (350, 35, 0)
    prices = PriceTable(Price(1.0, 2.0), {"b": Price(10.0, 20.0)})
    # a: 300 * 1 + 30 * 2 = 360 /1000; b: 50 * 10 + 5 * 20 = 600 / 1000
    assert case_cost(m, prices) == (pytest.approx(0.96), "")


def test_unreported_usage_or_a_missing_price_makes_the_cost_unknown() -> None:
    unreported = usage_metrics(
        [Turn("a", {"prompt_tokens": 0, "completion_tokens": 0}, usage_reported=False)]  # type: ignore[list-item]
    )
    assert case_cost(unreported, PriceTable(Price(1, 1))) == (
        None,
        "the LLM did not report token usage",
    )
    assert usage_metrics([Turn("a", None)])["usage_unknown_turns"] == 1  # type: ignore[list-item]
    known = usage_metrics([Turn("x", {"prompt_tokens": 5, "completion_tokens": 5})])  # type: ignore[list-item]
    assert case_cost(known, PriceTable(None, {"a": Price(1, 1)})) == (
        None,
        "no price for model 'x'",
    )
    assert case_cost(known, None) == (None, "no token prices are configured")
    assert case_cost(usage_metrics([]), None) == (0.0, "")


def test_prices_come_from_settings() -> None:
    assert eval_prices(Settings()) is None
    assert eval_prices(Settings(eval_price_per_1k_input=0.5)) is None  # output missing
    table = eval_prices(
        Settings(
            eval_price_per_1k_input=0.5,
            eval_price_per_1k_output=1.5,
            eval_model_prices={"m": (0.1, 0.2)},
        )
    )
    assert table is not None
    assert table.price_for("m") == Price(0.1, 0.2) and table.price_for("z") == Price(0.5, 1.5)


def test_a_cost_cap_must_be_positive() -> None:
    files = {"suite.yaml": "name: s\n"}
    assert EvalRunCreate(files=files, cost_cap_usd=0.5).cost_cap_usd == 0.5
    for bad in (0, -1):
        with pytest.raises(ValidationError):
            EvalRunCreate(files=files, cost_cap_usd=bad)


def test_reports_show_tokens_cost_and_why_the_run_stopped() -> None:
    cost = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "cost_usd": 0.51,
        "cost_unknown_runs": 0,
        "cost_cap_usd": 0.5,
    }
    stop = "stopped: cost cap 0.50 USD reached after 3 of 8 scenario runs"
    assert cost_line(cost) == "tokens: 1200 in, 300 out; cost 0.5100 USD; cap 0.50 USD"
    assert "; cost unknown;" in cost_line({**cost, "cost_usd": None})
    run = {
        "id": "r1",
        "suite": "s",
        "cost": cost,
        "stop_reason": stop,
        "warnings": ["w1"],
        "cases": [],
    }
    page = html_report(run)
    assert "0.5100 USD" in page and stop in page and "warning: w1" in page
    xml = junit_xml(run)
    assert 'name="cost"' in xml and stop in xml and 'name="warning1" value="w1"' in xml
