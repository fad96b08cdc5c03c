"""Retrieval answers as words an agent can use: a tool result, and document text.

Platform neutral: connectors wrap these strings in their platform's shapes. An outdated answer
never carries the withheld text, only what to say instead ("let me check on that"), so a stale
price cannot reach the caller through any platform.
"""

from __future__ import annotations

from core.calls.events import Turn
from core.knowledge.schemas import KnowledgeAnswer, KnowledgeHit

TOOL_RESULT_CHARS = 1800

EMPTY = (
    "Nothing in the knowledge base matches that. Say you don't have that information at hand "
    "and offer to find out, rather than guessing."
)
PARTIAL_NOTE = (
    "Note: some matching information is out of date and was withheld. If the caller asks about "
    "it, say you'll check and follow up instead of guessing."
)


def hit_text(hit: KnowledgeHit) -> str:
    where = " > ".join(p for p in (hit.title, hit.section) if p)
    return f"{where}: {hit.text}" if where else hit.text


def outdated_instruction(answer: KnowledgeAnswer) -> str:
    names = sorted({w.source_name for w in answer.withheld})
    fallback = answer.spoken_fallback or ""
    return (
        "OUTDATED: the knowledge base has information on this ("
        + ", ".join(names)
        + ") but it is past its freshness limit, so it was withheld. Do not guess or quote a "
        f'price or detail. Tell the caller something like: "{fallback}"'
    )


def tool_result(answer: KnowledgeAnswer, limit: int = TOOL_RESULT_CHARS) -> str:
    """The ``knowledge_search`` tool's result for every platform."""
    if answer.status == "empty":
        return EMPTY
    if answer.status == "outdated":
        return outdated_instruction(answer)
    parts = [f"[{i}] {hit_text(h)}" for i, h in enumerate(answer.hits, start=1)]
    if answer.status == "partial":
        parts.append(PARTIAL_NOTE)
    text = " ".join(" ".join(p.split()) for p in parts)
    return text if len(text) <= limit else text[: limit - 12].rstrip() + " [truncated]"


# Short follow-ups ("and on Sundays?") lean on the question before them.
MIN_QUERY_WORDS = 4


def caller_query(turns: list[Turn]) -> str:
    said = [t.text.strip() for t in turns if t.role == "caller" and t.text.strip()]
    if not said:
        return ""
    query = said[-1]
    if len(query.split()) < MIN_QUERY_WORDS and len(said) > 1:
        query = f"{said[-2]} {query}"
    return query


def no_question_reason(turns: list[Turn]) -> str:
    """Why ``caller_query`` found nothing to search for, for the call's trace."""
    if not turns:
        return "no conversation: the request carried no turn in messagesOpenAIFormatted or messages"
    return "no caller question: the conversation holds no non-empty user turn"
