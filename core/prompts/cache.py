"""The in-process prompt cache the hot path resolves from.

``resolve`` is pure memory: it never touches the database, so an assistant request pays no
round trip for its prompt. ``refresh`` runs off the hot path (the API's background poller): it
reads the single-row change marker and rebuilds the snapshot only when the marker moved, then
swaps it in with one reference assignment, so a request sees either the old state or the new
one, never a mix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlmodel import Session

from core.prompts import repository as repo
from core.prompts.assignment import Variant, assign
from core.prompts.models import PromptExperiment, PromptVersion
from core.prompts.schemas import PRODUCTION, version_ref


@dataclass(frozen=True)
class VersionSnapshot:
    version: int
    template: str
    variables: Mapping[str, Any]
    model: Mapping[str, Any]
    first_message: str | None
    tools: tuple[Mapping[str, Any], ...]

    @property
    def ref(self) -> str:
        return version_ref(self.version)

    @classmethod
    def of(cls, row: PromptVersion) -> VersionSnapshot:
        return cls(
            version=row.version,
            template=row.template,
            variables=MappingProxyType(dict(row.variables or {})),
            model=MappingProxyType(dict(row.model or {})),
            first_message=row.first_message,
            tools=tuple(MappingProxyType(dict(t)) for t in row.tools or []),
        )


@dataclass(frozen=True)
class ExperimentSnapshot:
    id: int
    variants: tuple[Variant, ...]  # canary first, control last
    control_version: int

    @property
    def key(self) -> str:
        return f"experiment-{self.id}"

    @classmethod
    def of(cls, row: PromptExperiment) -> ExperimentSnapshot:
        assert row.id is not None
        return cls(
            id=row.id,
            variants=tuple(
                Variant(int(v["version"]), float(v["weight"])) for v in row.variants or []
            ),
            control_version=row.control_version,
        )


@dataclass(frozen=True)
class AgentPrompts:
    labels: Mapping[str, int]
    experiment: ExperimentSnapshot | None
    versions: Mapping[int, VersionSnapshot]


@dataclass(frozen=True)
class Resolution:
    """Which version a caller gets and why (``source``: ``label:<name>`` or
    ``experiment:<id>:<control|variant>``)."""

    version: VersionSnapshot
    source: str
    experiment_id: int | None = None


@dataclass
class CacheStats:
    revision: int = -1
    reloads: int = 0
    last_reload_s: float = 0.0
    last_poll_at: float = 0.0
    errors: int = 0
    last_error: str | None = None
    agents: int = 0


@dataclass(frozen=True)
class _Snapshot:
    revision: int
    agents: Mapping[str, AgentPrompts] = field(default_factory=dict)


class PromptCache:
    def __init__(self) -> None:
        self._snapshot = _Snapshot(revision=-1)
        self._refresh_lock = threading.Lock()
        # Versions asked for by number (evals: ``--version N``); rows are immutable, so kept.
        self._pinned: dict[tuple[str, int], VersionSnapshot] = {}
        self.stats = CacheStats()

    @property
    def revision(self) -> int:
        return self._snapshot.revision

    def agent(self, agent_id: str) -> AgentPrompts | None:
        return self._snapshot.agents.get(agent_id)

    # -- hot path ------------------------------------------------------------------------
    def resolve(
        self, agent_id: str, caller_key: str, label: str | None = None
    ) -> Resolution | None:
        """The version this caller gets, or None when the agent has nothing to serve (then the
        platform's own assistant runs unchanged)."""
        agent = self._snapshot.agents.get(agent_id)
        if agent is None:
            return None
        if label is not None and label in agent.labels:
            version = agent.versions.get(agent.labels[label])
            if version is not None:
                return Resolution(version, f"label:{label}")
        experiment = agent.experiment
        if experiment is not None and experiment.variants:
            chosen = assign(experiment.key, caller_key, experiment.variants)
            version = agent.versions.get(chosen.version)
            if version is not None:
                role = "control" if chosen.version == experiment.control_version else "variant"
                return Resolution(version, f"experiment:{experiment.id}:{role}", experiment.id)
        production = agent.labels.get(PRODUCTION)
        if production is not None and production in agent.versions:
            return Resolution(agent.versions[production], f"label:{PRODUCTION}")
        return None

    def resolve_version(self, agent_id: str, version: int) -> Resolution | None:
        """That exact version (labelled, in an experiment, or loaded with ``load_version``),
        or None when this process does not hold it."""
        agent = self._snapshot.agents.get(agent_id)
        snap = agent.versions.get(version) if agent is not None else None
        if snap is None:
            snap = self._pinned.get((agent_id, version))
        return Resolution(snap, f"version:{version}") if snap is not None else None

    def load_version(self, session: Session, agent_id: str, version: int) -> bool:
        """Read one version row so ``resolve_version`` can serve it; False when it does not
        exist."""
        if self.resolve_version(agent_id, version) is not None:
            return True
        row = repo.get_version(session, agent_id, version)
        if row is None:
            return False
        self._pinned[(agent_id, version)] = VersionSnapshot.of(row)
        return True

    # -- off the hot path ----------------------------------------------------------------
    def refresh(self, session: Session, *, force: bool = False) -> bool:
        """Reload when the change marker moved; True when a new snapshot was swapped in."""
        with self._refresh_lock:
            self.stats.last_poll_at = time.monotonic()
            # The marker is read before the rows: a change committed in between is picked up
            # now and announced again by the next poll, never missed.
            revision = repo.current_revision(session)
            if not force and revision == self._snapshot.revision:
                return False
            started = time.perf_counter()
            self._snapshot = _Snapshot(revision=revision, agents=self._load(session))
            self.stats.revision = revision
            self.stats.reloads += 1
            self.stats.last_reload_s = time.perf_counter() - started
            self.stats.agents = len(self._snapshot.agents)
            return True

    @staticmethod
    def _load(session: Session) -> dict[str, AgentPrompts]:
        labels: dict[str, dict[str, int]] = {}
        for label in repo.all_labels(session):
            labels.setdefault(label.agent_id, {})[label.name] = label.version
        experiments = {e.agent_id: e for e in repo.running_experiments(session)}
        wanted: set[tuple[str, int]] = set()
        for agent_id, names in labels.items():
            wanted.update((agent_id, v) for v in names.values())
        for agent_id, exp in experiments.items():
            wanted.add((agent_id, exp.control_version))
            wanted.update((agent_id, int(v["version"])) for v in exp.variants or [])
        versions: dict[str, dict[int, VersionSnapshot]] = {}
        for row in repo.versions_for(session, wanted):
            versions.setdefault(row.agent_id, {})[row.version] = VersionSnapshot.of(row)
        out: dict[str, AgentPrompts] = {}
        for agent_id in set(labels) | set(experiments):
            running = experiments.get(agent_id)
            out[agent_id] = AgentPrompts(
                labels=MappingProxyType(labels.get(agent_id, {})),
                experiment=ExperimentSnapshot.of(running) if running is not None else None,
                versions=MappingProxyType(versions.get(agent_id, {})),
            )
        return out
