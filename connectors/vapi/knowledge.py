"""Canonical knowledge answers -> VAPI ``knowledge-base-request`` replies, and the caller's
question out of the request's conversation.

Reply: ``{"documents": [{"content", "similarity", "uuid"}]}``. When every match was withheld as
outdated, no document is returned and ``message`` (a VAPI CustomMessage, spoken without model
generation) says "let me check on that" instead, so no stale price reaches the caller. When only
some were withheld, the current documents go out with one note telling the model not to guess.
"""

from __future__ import annotations

from typing import Any

from core.knowledge.schemas import KnowledgeAnswer
from core.knowledge.voice import (  # noqa: F401 (the request side, re-exported)
    PARTIAL_NOTE,
    caller_query,
    hit_text,
    no_question_reason,
)


def knowledge_base_reply(answer: KnowledgeAnswer) -> dict[str, Any]:
    documents: list[dict[str, Any]] = [
        {
            "content": hit_text(h),
            "similarity": round(h.similarity if h.similarity is not None else h.score, 4),
            "uuid": h.chunk_id,
        }
        for h in answer.hits
    ]
    reply: dict[str, Any] = {"documents": documents}
    if answer.status == "outdated":
        reply["message"] = {"type": "custom-message", "content": answer.spoken_fallback}
    elif answer.status == "partial":
        documents.append({"content": PARTIAL_NOTE, "similarity": 0.0, "uuid": "backline-note"})
    return reply
