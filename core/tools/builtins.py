"""Built-in tools every agent has, whatever the platform: ``memory_search`` and
``knowledge_search``.

A tool answers with a result string or an error string the agent can voice; it never raises
for bad arguments (the platform would hear a 5xx).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.knowledge.schemas import KnowledgeAnswer
from core.knowledge.voice import tool_result as knowledge_tool_result
from core.memory.service import MemoryService

MEMORY_SEARCH = "memory_search"
KNOWLEDGE_SEARCH = "knowledge_search"
# (query, limit) -> answer; the edge binds it to the call's agent and records each retrieval.
KnowledgeSearch = Callable[[str, int], KnowledgeAnswer]

BUILTIN_TOOLS: dict[str, dict[str, Any]] = {
    MEMORY_SEARCH: {
        "description": (
            "Search what we remember about the current caller from earlier calls "
            "(past requests, preferences, facts). Use before asking the caller to repeat "
            "themselves."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look up, in plain words"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
            },
            "required": ["query"],
        },
    },
    KNOWLEDGE_SEARCH: {
        "description": (
            "Search the business's knowledge base (prices, policies, hours, service area, "
            "FAQs) for current information. Use it before answering any factual question; if "
            "the result says OUTDATED, do not quote a number, say you will check."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "The caller's question, in plain words"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 5, "default": 3},
            },
            "required": ["query"],
        },
    },
}


@dataclass(frozen=True)
class ToolOutcome:
    result: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ToolContext:
    org_id: str
    agent_id: str
    caller_hash: str | None


def run_builtin(
    name: str,
    arguments: dict[str, Any],
    ctx: ToolContext,
    memory: MemoryService,
    knowledge: KnowledgeSearch | None = None,
) -> ToolOutcome | None:
    """Run a built-in tool; None when ``name`` is not a built-in."""
    if name == KNOWLEDGE_SEARCH:
        return _knowledge_search(arguments, knowledge)
    if name != MEMORY_SEARCH:
        return None
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return ToolOutcome(error="memory_search needs a non-empty 'query' string argument")
    limit = arguments.get("limit", 3)
    if not isinstance(limit, int) or not 1 <= limit <= 10:
        limit = 3
    if ctx.caller_hash is None:
        return ToolOutcome(error="no caller number on this call, so there is no memory to search")
    hits = memory.search(ctx.org_id, ctx.agent_id, ctx.caller_hash, query, k=limit)
    if not hits:
        return ToolOutcome(result="No earlier memories of this caller match that.")
    return ToolOutcome(result=" ".join(f"[{h.created_at:%Y-%m-%d}] {h.text}" for h in hits))


def _knowledge_search(arguments: dict[str, Any], knowledge: KnowledgeSearch | None) -> ToolOutcome:
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        return ToolOutcome(error="knowledge_search needs a non-empty 'query' string argument")
    limit = arguments.get("limit", 3)
    if not isinstance(limit, int) or not 1 <= limit <= 5:
        limit = 3
    if knowledge is None:
        return ToolOutcome(error="the knowledge base is not available right now")
    return ToolOutcome(result=knowledge_tool_result(knowledge(query, limit)))
