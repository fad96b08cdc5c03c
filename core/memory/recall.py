"""Callers' memory held in process during their calls, so an in-call ``memory_search`` scores
in numpy instead of reading the database.

The context request at call start prefetches the caller's snapshot: every vector of the
caller's partition and the rows a hit can name (summaries, current facts). A search then checks
one stamp, the caller profile's ``updated_at`` (one indexed read), and scores the snapshot with
the same rules as the database path. Every memory write (post-call, a correction, retention)
rebuilds the profile and a forget deletes it, so the stamp moves with any change, whichever
process made it. A snapshot is only kept when it is settled: every row has its vector, and the
profile changed more than ``SETTLE_S`` ago (vectors are written just after the rows commit, so
a snapshot read in between would miss or misplace them). Bounded (least recently used first
out) and kept for about a call's length.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from core.ports import Vector, VectorHit

RECALL_SIZE = 1024  # callers held at once (~20 KB each at 13 memories)
RECALL_TTL_S = 900.0  # about a long call
SETTLE_S = 10.0  # a profile changed this recently may still have vectors in flight


@dataclass(frozen=True)
class Recallable:
    """What a hit names: a summary or a current fact, as the search answers it."""

    kind: str
    text: str
    created_at: datetime
    source_call_id: str


@dataclass(frozen=True)
class CallerSnapshot:
    stamp: datetime | None
    item_ids: tuple[str, ...]
    matrix: npt.NDArray[np.float32]  # one unit vector per item id, all of the partition
    rows: Mapping[str, Recallable]

    @classmethod
    def build(
        cls,
        stamp: datetime | None,
        vectors: Sequence[tuple[str, Vector]],
        rows: Mapping[str, Recallable],
    ) -> CallerSnapshot:
        ids = tuple(item_id for item_id, _ in vectors)
        if vectors:
            matrix = np.vstack([np.asarray(v, dtype=np.float32) for _, v in vectors])
        else:
            matrix = np.zeros((0, 0), dtype=np.float32)
        matrix.setflags(write=False)
        return cls(stamp=stamp, item_ids=ids, matrix=matrix, rows=rows)

    @property
    def complete(self) -> bool:
        """Every row a hit can name has its vector."""
        return set(self.rows) <= set(self.item_ids)

    def query(self, vector: Vector, k: int) -> list[VectorHit]:
        """The embedded store's exact scan, on the snapshot: the top ``k`` vectors of the
        partition by cosine (vectors whose row is gone included, as the store returns them)."""
        if not self.item_ids:
            return []
        sims = self.matrix @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims)[:k]
        return [VectorHit(item_id=self.item_ids[i], similarity=float(sims[i])) for i in order]


class CallerRecall:
    """Process-wide snapshots by partition (org/agent/caller); thread-safe."""

    def __init__(
        self,
        size: int = RECALL_SIZE,
        ttl_s: float = RECALL_TTL_S,
        settle_s: float = SETTLE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self.settle_s = settle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[str, tuple[float, CallerSnapshot]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, partition: str, stamp: datetime | None) -> CallerSnapshot | None:
        """The snapshot, if one is held for this stamp and not expired."""
        with self._lock:
            held = self._snapshots.get(partition)
            if held is None:
                self.misses += 1
                return None
            stored_at, snapshot = held
            if snapshot.stamp != stamp or self._clock() - stored_at > self._ttl_s:
                del self._snapshots[partition]
                self.misses += 1
                return None
            self._snapshots.move_to_end(partition)
            self.hits += 1
            return snapshot

    def keep(self, partition: str, snapshot: CallerSnapshot, now: datetime) -> bool:
        """Hold the snapshot if it is settled (see the module docstring); True when held."""
        stamp = snapshot.stamp
        if stamp is not None and stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)  # SQLite hands timestamps back naive
        if not snapshot.complete or (
            stamp is not None and (now - stamp).total_seconds() <= self.settle_s
        ):
            return False
        self.put(partition, snapshot)
        return True

    def put(self, partition: str, snapshot: CallerSnapshot) -> None:
        with self._lock:
            self._snapshots[partition] = (self._clock(), snapshot)
            self._snapshots.move_to_end(partition)
            while len(self._snapshots) > self._size:
                self._snapshots.popitem(last=False)

    def invalidate(self, partition: str) -> None:
        with self._lock:
            self._snapshots.pop(partition, None)

    def __len__(self) -> int:
        return len(self._snapshots)
