"""Canonical answers -> replies of the ``custom`` contract, version ``"1"``.

Every reply is a JSON object carrying ``"version": "1"``; the sender reads the fields its
request type documents and ignores the rest (later minor versions may add fields). This module
only shapes replies: it never decides what a caller is told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.custom.webhooks import VERSION
from core.knowledge.schemas import KnowledgeAnswer
from core.knowledge.voice import PARTIAL_NOTE, hit_text
from core.memory.schemas import CallerContext
from core.prompts.serving import ServedPrompt
from core.tools.builtins import ToolOutcome


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def context_reply(
    *,
    call_id: str,
    variables: Mapping[str, str],
    context: CallerContext | None,
    prompt: ServedPrompt | None,
    tools: list[dict[str, Any]],
) -> dict[str, Any]:
    """``call.started`` -> ``{"version", "call_id", "context", "variables", "prompt"}``.

    ``context`` is the caller's memory as data; ``variables`` the same as the ``backline_*``
    strings the hosted platforms substitute into prompts (plus a served version's defaults);
    ``prompt`` the served prompt version, or null when the agent serves none.
    """
    ctx = context or CallerContext()
    served: dict[str, Any] | None = None
    if prompt is not None:
        served = {
            "version": prompt.ref,
            "system_prompt": prompt.system_prompt,
            "first_message": prompt.first_message,
            "model": dict(prompt.model),
            "tools": tools,
        }
    return {
        "version": VERSION,
        "call_id": call_id,
        "context": {
            "caller_known": ctx.known,
            "memory_summary": ctx.summary,
            "facts": dict(ctx.facts),
            "call_count": ctx.call_count,
            "last_call_at": _iso(ctx.last_call_at),
        },
        "variables": {str(k): str(v) for k, v in variables.items()},
        "prompt": served,
    }


def tool_results_reply(results: Sequence[tuple[str, ToolOutcome]]) -> dict[str, Any]:
    """``tool.calls`` -> ``{"version", "results": [{"id", "result"} | {"id", "error"}]}``, in
    the order of the request; every call is answered, a failed one with ``error`` the agent can
    say."""
    out: list[dict[str, str]] = []
    for tool_call_id, outcome in results:
        if outcome.error is not None:
            out.append({"id": tool_call_id, "error": outcome.error})
        else:
            out.append({"id": tool_call_id, "result": outcome.result or ""})
    return {"version": VERSION, "results": out}


def knowledge_reply(answer: KnowledgeAnswer | None) -> dict[str, Any]:
    """``knowledge.request`` -> the canonical answer with its freshness signals.

    ``answer_status``: ``ok`` (the best match is current), ``partial`` (some matches were
    withheld as outdated; ``note`` says what to tell the model), ``outdated`` (every match was
    withheld: no document, and ``spoken_fallback`` is what to say instead), ``empty``.
    Withheld documents never carry their text, so a stale price cannot reach the caller.
    """
    if answer is None:
        return {
            "version": VERSION,
            "answer_status": "empty",
            "outdated": False,
            "query": "",
            "documents": [],
            "withheld": [],
            "spoken_fallback": None,
            "note": None,
        }
    return {
        "version": VERSION,
        "answer_status": answer.status,
        "outdated": answer.status == "outdated",
        "query": answer.query,
        "documents": [
            {
                "id": h.chunk_id,
                "content": hit_text(h),
                "title": h.title,
                "section": h.section,
                "source": h.source_name,
                "similarity": round(h.similarity if h.similarity is not None else h.score, 4),
                "freshness": h.freshness,
                "outdated": False,
                "verified_at": _iso(h.verified_at),
                "fetched_at": _iso(h.fetched_at),
                "age_s": h.age_s,
            }
            for h in answer.hits
        ],
        "withheld": [
            {
                "id": w.chunk_id,
                "source": w.source_name,
                "section": w.section,
                "freshness": w.freshness,
                "outdated": True,
                "verified_at": _iso(w.verified_at),
                "reason": w.reason,
            }
            for w in answer.withheld
        ],
        "spoken_fallback": answer.spoken_fallback if answer.status == "outdated" else None,
        "note": PARTIAL_NOTE if answer.status == "partial" else None,
    }


def accepted_reply(receipt: Mapping[str, Any]) -> dict[str, Any]:
    """``call.ended`` -> the inbox receipt: ``{"version", "status": "accepted", "duplicate",
    "revision", "workflow_id", "workflow_started"}``."""
    return {"version": VERSION, **receipt}


def recorded_reply() -> dict[str, Any]:
    """``transcript.update`` -> ``{"version", "status": "recorded"}``."""
    return {"version": VERSION, "status": "recorded"}
