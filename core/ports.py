"""Protocols core services depend on; connectors implement them.

Vectors are scoped by ``namespace`` (e.g. "memory") and ``partition`` (org/agent/caller), so one
tenant's vectors can never be read through another tenant's partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]


class Embedder(Protocol):
    dimension: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Unit-normalized embeddings, one row per text."""
        ...


@dataclass(frozen=True)
class VectorHit:
    item_id: str
    similarity: float


class VectorStore(Protocol):
    def upsert(
        self, namespace: str, partition: str, items: Sequence[tuple[str, Vector]]
    ) -> None: ...

    def query(self, namespace: str, partition: str, vector: Vector, k: int) -> list[VectorHit]: ...

    def delete(self, namespace: str, partition: str, item_ids: Sequence[str]) -> None: ...

    def delete_partition(self, namespace: str, partition: str) -> None: ...
