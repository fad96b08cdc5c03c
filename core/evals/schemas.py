"""Eval API shapes: a run request, a run's status and results, a registered suite."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.prompts.schemas import LABEL_PATTERN

MAX_SUITE_FILES = 500
MAX_FILE_CHARS = 200_000


def _check_files(files: dict[str, str]) -> dict[str, str]:
    for path in files:
        parts = path.replace("\\", "/").split("/")
        if path.startswith("/") or ".." in parts or not path.strip() or "" in parts:
            raise ValueError(
                f"'{path}' is not a path inside the suite folder; send paths relative to it, "
                "e.g. suite.yaml or refunds/late_order.yaml"
            )
        if not path.endswith((".yaml", ".yml")):
            raise ValueError(f"'{path}' is not a YAML file; send only the suite's *.yaml files")
        if len(files[path]) > MAX_FILE_CHARS:
            raise ValueError(f"'{path}' is longer than {MAX_FILE_CHARS} characters")
    if "suite.yaml" not in files:
        raise ValueError("the files have no suite.yaml; send the whole suite folder")
    return files


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuiteFiles(_Strict):
    files: dict[str, str] = Field(
        max_length=MAX_SUITE_FILES,
        description="the suite folder's YAML files: path relative to the folder -> text",
    )

    _files = field_validator("files")(_check_files)


class EvalRunCreate(SuiteFiles):
    label: str | None = Field(
        None, pattern=LABEL_PATTERN, description="prompt label to test, e.g. staging"
    )
    version: int | None = Field(
        None, strict=True, ge=1, le=2**31 - 1, description="prompt version to test"
    )
    tags: list[str] = Field([], max_length=50, description="run only scenarios with these tags")
    repeats: int | None = Field(
        None, strict=True, ge=1, le=1000, description="override the suite's repeats"
    )
    baseline_run_id: str | None = Field(
        None, max_length=32, description="compare with this run (default: the last accepted)"
    )
    cost_cap_usd: float | None = Field(
        None,
        strict=True,
        gt=0,
        le=1_000_000,
        description="stop scheduling new cases once the run's LLM cost reaches this (USD)",
    )


class EvalRunCreated(BaseModel):
    id: str
    status: str
    total: int


class EvalSuitePublic(BaseModel):
    agent_id: str
    name: str
    files: list[str]
    created_at: datetime
    updated_at: datetime


class EvalCasePublic(BaseModel):
    index: int
    scenario: str
    persona: str | None
    repeat: int
    status: str
    passed: bool
    reason: str | None
    checks: list[dict[str, Any]]
    transcript: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: float


class Progress(BaseModel):
    done: int
    total: int


class EvalCost(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None = Field(
        description="USD of the cases whose cost is known; None: no case's cost is known"
    )
    cost_unknown_runs: int = Field(
        description="cases whose cost is unknown (usage not reported, or no price for the model)"
    )
    cost_cap_usd: float | None


class EvalRunPublic(BaseModel):
    id: str
    org_id: str
    agent_id: str
    suite: str
    label: str | None
    version: int | None
    tags: list[str]
    status: str
    verdict: str | None
    progress: Progress
    passed: int
    failed: int
    skipped: int
    error: str | None
    baseline_run_id: str | None
    accepted: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    scenarios: list[dict[str, Any]] = Field(
        [], description="per scenario x persona: passed, runs, skipped, verdict, reason"
    )
    cost: EvalCost | None = None
    stop_reason: str | None = Field(
        None, description="why the run stopped before every case ran (a cap was reached)"
    )
    warnings: list[str] = []
    cases: list[EvalCasePublic] | None = None
