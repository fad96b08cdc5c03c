"""Embedded vector store: vectors in the application database, exact search per partition.

Chosen from measurement (docs/decisions.md): memory partitions are per caller and hold tens of
rows, so an exact cosine scan of one partition loaded by an indexed read costs well under a
millisecond, works identically on SQLite and Postgres, and needs no extension. Large knowledge
bases need an approximate index instead (a separate adapter).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import Index, LargeBinary, UniqueConstraint, delete
from sqlalchemy.engine import Engine
from sqlmodel import Column, Field, Session, SQLModel, col, select

from core.db import utcnow
from core.ports import Vector, VectorHit


class VectorEntry(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("namespace", "partition", "item_id", name="uq_vector_item"),
        Index("ix_vector_partition", "namespace", "partition"),
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=32)
    partition: str = Field(max_length=200)
    item_id: str = Field(max_length=128)
    embedding: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class EmbeddedVectorStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def upsert(self, namespace: str, partition: str, items: Sequence[tuple[str, Vector]]) -> None:
        if not items:
            return
        ids = [item_id for item_id, _ in items]
        with Session(self._engine) as session:
            session.execute(
                delete(VectorEntry).where(
                    col(VectorEntry.namespace) == namespace,
                    col(VectorEntry.partition) == partition,
                    col(VectorEntry.item_id).in_(ids),
                )
            )
            for item_id, vector in items:
                session.add(
                    VectorEntry(
                        namespace=namespace,
                        partition=partition,
                        item_id=item_id,
                        embedding=np.asarray(vector, dtype=np.float32).tobytes(),
                    )
                )
            session.commit()

    def read_partition(
        self, namespace: str, partition: str, session: Session | None = None
    ) -> list[tuple[str, Vector]]:
        stmt = select(VectorEntry.item_id, VectorEntry.embedding).where(
            VectorEntry.namespace == namespace, VectorEntry.partition == partition
        )
        if session is not None:
            rows = session.exec(stmt).all()
        else:
            with Session(self._engine) as own:
                rows = own.exec(stmt).all()
        return [(item_id, np.frombuffer(blob, dtype=np.float32)) for item_id, blob in rows]

    def query(self, namespace: str, partition: str, vector: Vector, k: int) -> list[VectorHit]:
        with Session(self._engine) as session:
            rows = session.exec(
                select(VectorEntry.item_id, VectorEntry.embedding).where(
                    VectorEntry.namespace == namespace, VectorEntry.partition == partition
                )
            ).all()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(
            len(rows), -1
        )
        sims = matrix @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-sims)[:k]
        return [VectorHit(item_id=rows[i][0], similarity=float(sims[i])) for i in order]

    def delete(self, namespace: str, partition: str, item_ids: Sequence[str]) -> None:
        if not item_ids:
            return
        with Session(self._engine) as session:
            session.execute(
                delete(VectorEntry).where(
                    col(VectorEntry.namespace) == namespace,
                    col(VectorEntry.partition) == partition,
                    col(VectorEntry.item_id).in_(list(item_ids)),
                )
            )
            session.commit()

    def delete_partition(self, namespace: str, partition: str) -> None:
        with Session(self._engine) as session:
            session.execute(
                delete(VectorEntry).where(
                    col(VectorEntry.namespace) == namespace, col(VectorEntry.partition) == partition
                )
            )
            session.commit()
