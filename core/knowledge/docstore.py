"""The ingestion docstore's key-value storage in the application database.

One namespace per source, so a source's document hashes are read, replaced and dropped
together, in the same transaction as its chunk rows. Never commits (the caller's unit of work
does).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.knowledge import repository as repo
from core.knowledge.models import KnowledgeKV


def source_namespace(source_id: str) -> str:
    return f"source:{source_id}"


class SqlKeyValueStore:
    def __init__(self, session: Session, namespace: str) -> None:
        self._session = session
        self.namespace = namespace

    def put(self, key: str, val: dict[str, Any], collection: str) -> None:
        row = repo.kv_get(self._session, self.namespace, collection, key)
        if row is None:
            row = KnowledgeKV(namespace=self.namespace, collection=collection, key=key)
        row.value = dict(val)  # a new object, so the JSON column is marked changed
        self._session.add(row)
        self._session.flush()

    def get(self, key: str, collection: str) -> dict[str, Any] | None:
        row = repo.kv_get(self._session, self.namespace, collection, key)
        return dict(row.value) if row is not None else None

    def get_all(self, collection: str) -> dict[str, dict[str, Any]]:
        return repo.kv_all(self._session, self.namespace, collection)

    def delete(self, key: str, collection: str) -> bool:
        row = repo.kv_get(self._session, self.namespace, collection, key)
        if row is None:
            return False
        self._session.delete(row)
        self._session.flush()
        return True

    def clear(self) -> None:
        repo.kv_clear(self._session, self.namespace)
