"""What the hot path calls: the version this caller gets, rendered for this call.

Memory only: the cache resolves and the template renders; no database, no network. Platform
shapes (VAPI's inline assistant, Retell's and Bland's dynamic variables) are the connectors'
business; this module hands them one platform-neutral ``ServedPrompt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.memory.schemas import CallerContext
from core.prompts.cache import PromptCache
from core.prompts.render import build_variables, render


@dataclass(frozen=True)
class ServedPrompt:
    version: int
    ref: str
    source: str
    experiment_id: int | None
    system_prompt: str
    first_message: str | None
    model: Mapping[str, Any]
    tools: tuple[Mapping[str, Any], ...]
    # The version's variable defaults the call does not set itself, for the platform to fill
    # its own ``{{name}}`` with.
    defaults: Mapping[str, str] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        """What travels with the platform's variables (VAPI ``variableValues``, Retell dynamic
        variables, the Bland dynamic-data reply): the version's defaults under their own names,
        and the rendered prompt in Backline's ``backline_`` namespace, which always wins."""
        return {
            **self.defaults,
            "backline_system_prompt": self.system_prompt,
            "backline_first_message": self.first_message or "",
            "backline_prompt_version": self.ref,
        }


def serve_prompt(
    cache: PromptCache,
    *,
    agent_id: str,
    agent_name: str,
    caller_key: str,
    context: CallerContext,
    now: datetime,
    label: str | None = None,
    call_variables: Mapping[str, str] | None = None,
    version: int | None = None,
) -> ServedPrompt | None:
    """None when the agent has no served version: the platform's assistant runs unchanged.
    ``call_variables``: values the call already carries; a version default never replaces
    one."""
    if version is not None:  # an explicit version (evals): that one or nothing, never another
        resolution = cache.resolve_version(agent_id, version)
    else:
        resolution = cache.resolve(agent_id, caller_key, label)
    if resolution is None:
        return None
    snap = resolution.version
    values = build_variables(
        version_variables=snap.variables,
        context=context,
        now=now,
        agent_id=agent_id,
        agent_name=agent_name,
        prompt_version=snap.ref,
    )
    return ServedPrompt(
        version=snap.version,
        ref=snap.ref,
        source=resolution.source,
        experiment_id=resolution.experiment_id,
        system_prompt=render(snap.template, values),
        first_message=render(snap.first_message, values) if snap.first_message else None,
        model=snap.model,
        tools=snap.tools,
        defaults={
            name: str(value)
            for name, value in snap.variables.items()
            if name not in (call_variables or {})
        },
    )
