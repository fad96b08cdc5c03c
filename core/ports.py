"""Protocols core services depend on; connectors implement them.

Vectors are scoped by ``namespace`` (e.g. "memory") and ``partition`` (org/agent/caller), so one
tenant's vectors can never be read through another tenant's partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from sqlmodel import Session

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


@runtime_checkable
class PartitionReader(Protocol):
    """A vector store that hands over a whole partition at once (memory partitions hold tens
    of vectors), so a caller's memory can be searched in process. ``session``: the caller's
    unit of work, reused when the store lives in the application database."""

    def read_partition(
        self, namespace: str, partition: str, session: Session | None = None
    ) -> list[tuple[str, Vector]]: ...
