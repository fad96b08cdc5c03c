"""What an eval case's LLM tokens cost: a price table (USD per 1,000 prompt and completion
tokens, per model with a default) applied to the tokens a case used per model.

Pure arithmetic; the table is built from settings by a composition root. A cost is ``None``
(unknown) when the model did not report its usage or no price is known for a model used;
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.settings import Settings

__all__ = ["Price", "PriceTable", "case_cost", "eval_prices"]


@dataclass(frozen=True)
class Price:
    input_per_1k: float
    output_per_1k: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000


@dataclass(frozen=True)
class PriceTable:
    default: Price | None = None
    models: Mapping[str, Price] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        input_per_1k: float | None,
        output_per_1k: float | None,
        models: Mapping[str, tuple[float, float]] | None = None,
    ) -> PriceTable:
        """The table from settings: the default applies when both prices are set."""
        default = (
            Price(input_per_1k, output_per_1k)
            if input_per_1k is not None and output_per_1k is not None
            else None
        )
        return cls(default, {m: Price(i, o) for m, (i, o) in (models or {}).items()})

    def price_for(self, model: str) -> Price | None:
        return self.models.get(model, self.default)


def case_cost(metrics: Mapping[str, Any], prices: PriceTable | None) -> tuple[float | None, str]:
    """(cost in USD, why it is unknown) of a case from its usage metrics
    (``evals.runner.usage_metrics``); a case without model turns costs 0."""
    by_model: Mapping[str, Any] = metrics.get("tokens_by_model") or {}
    if int(metrics.get("usage_unknown_turns") or 0):
        return None, "the LLM did not report token usage"
    if not by_model:
        return 0.0, ""
    if prices is None:
        return None, "no token prices are configured"
    total = 0.0
    for model, (prompt, completion) in by_model.items():
        price = prices.price_for(model)
        if price is None:
            return None, f"no price for model '{model}'"
        total += price.cost(int(prompt), int(completion))
    return round(total, 6), ""


def eval_prices(settings: Settings) -> PriceTable | None:
    """The table of ``BACKLINE_EVAL_PRICE_PER_1K_INPUT/OUTPUT`` and ``EVAL_MODEL_PRICES``;
    None when none is set (every cost is then unknown)."""
    table = PriceTable.of(
        settings.eval_price_per_1k_input,
        settings.eval_price_per_1k_output,
        settings.eval_model_prices,
    )
    return table if table.default is not None or table.models else None
