"""Weaviate knowledge index (weaviate-client v4): the scale-out adapter.

One collection, ``BacklineKnowledge``, with multi-tenancy: a tenant per organization (so one
org's chunks live in their own shard and can never be read through another tenant), and a
``partition`` property per knowledge base. Vectors are ours (self-provided MiniLM, cosine);
BM25 is Weaviate's inverted index; hybrid search is native (ranked fusion, i.e. RRF), so the
hot path makes one round trip. Object ids are UUIDv5 of (partition, chunk id): upserts are
idempotent. Client-side retries are left off: Temporal's retry policy owns retries.

Weaviate cannot run on the development machine this was written on (no server binary, no
Docker); the shared contract suite runs against it when ``BACKLINE_WEAVIATE_URL`` reaches one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from core.knowledge.ports import IndexEntry, IndexHit
from core.knowledge.text import canonical_numbers
from core.ports import Vector

COLLECTION = "BacklineKnowledge"
HYBRID_ALPHA = 0.5  # equal say for BM25 and dense, like unweighted RRF
_TENANT_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def tenant_name(org_id: str) -> str:
    """Weaviate tenant names allow ``[A-Za-z0-9_-]{1,64}``; other org ids are hashed."""
    if _TENANT_OK.match(org_id):
        return org_id
    return "org-" + hashlib.sha256(org_id.encode()).hexdigest()[:40]


def connect(url: str, api_key: str | None = None) -> Any:
    """A client for ``http(s)://host[:port]`` (gRPC on 50051 of the same host)."""
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Timeout

    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "localhost"
    return weaviate.connect_to_custom(
        http_host=host,
        http_port=parts.port or (443 if secure else 8080),
        http_secure=secure,
        grpc_host=host,
        grpc_port=50051,
        grpc_secure=secure,
        auth_credentials=api_key,
        additional_config=AdditionalConfig(timeout=Timeout(init=5, query=10, insert=60)),
    )


class WeaviateKnowledgeIndex:
    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        self._client = client
        self._name = collection
        self._known_tenants: set[str] = set()
        self._ensure_collection()

    def _ensure_collection(self) -> None:
        from weaviate.classes.config import Configure, DataType, Property, VectorDistances

        if self._client.collections.exists(self._name):
            return
        self._client.collections.create(
            name=self._name,
            multi_tenancy_config=Configure.multi_tenancy(
                enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
            ),
            vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.hnsw(
                    distance_metric=VectorDistances.COSINE
                )
            ),
            properties=[
                Property(name="chunk_id", data_type=DataType.TEXT, index_searchable=False),
                Property(name="partition", data_type=DataType.TEXT, index_searchable=False),
                Property(name="text", data_type=DataType.TEXT),
            ],
        )

    def _tenant(self, org_id: str, create: bool) -> Any | None:
        from weaviate.classes.tenants import Tenant

        name = tenant_name(org_id)
        collection = self._client.collections.get(self._name)
        if name not in self._known_tenants:
            existing = collection.tenants.get()
            if name not in existing:
                if not create:
                    return None
                collection.tenants.create([Tenant(name=name)])
            self._known_tenants.add(name)
        return collection.with_tenant(name)

    @staticmethod
    def _in_partition(partition: str) -> Any:
        from weaviate.classes.query import Filter

        return Filter.by_property("partition").equal(partition)

    def upsert(self, tenant: str, partition: str, entries: Sequence[IndexEntry]) -> None:
        from weaviate.classes.data import DataObject
        from weaviate.util import generate_uuid5

        if not entries:
            return
        handle = self._tenant(tenant, create=True)
        assert handle is not None
        objects = [
            DataObject(
                properties={"chunk_id": e.chunk_id, "partition": partition, "text": e.text},
                uuid=generate_uuid5(f"{partition}/{e.chunk_id}"),
                vector=[float(x) for x in e.vector],
            )
            for e in entries
        ]
        for start in range(0, len(objects), 200):
            result = handle.data.insert_many(objects[start : start + 200])
            if result.has_errors:
                first = next(iter(result.errors.values()))
                raise RuntimeError(f"Weaviate rejected {len(result.errors)} objects: {first}")

    def delete(self, tenant: str, partition: str, chunk_ids: Sequence[str]) -> None:
        from weaviate.classes.query import Filter

        handle = self._tenant(tenant, create=False)
        if handle is None or not chunk_ids:
            return
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            handle.data.delete_many(
                where=Filter.by_property("chunk_id").contains_any(part)
                & self._in_partition(partition)
            )

    def drop_partition(self, tenant: str, partition: str) -> None:
        handle = self._tenant(tenant, create=False)
        if handle is not None:
            handle.data.delete_many(where=self._in_partition(partition))

    def dense(self, tenant: str, partition: str, vector: Vector, k: int) -> list[IndexHit]:
        from weaviate.classes.query import MetadataQuery

        handle = self._tenant(tenant, create=False)
        if handle is None:
            return []
        result = handle.query.near_vector(
            near_vector=[float(x) for x in vector],
            limit=k,
            filters=self._in_partition(partition),
            return_metadata=MetadataQuery(distance=True),
            return_properties=["chunk_id"],
        )
        return [
            # Cosine distance -> similarity, the scale every adapter reports.
            IndexHit(str(o.properties["chunk_id"]), 1.0 - float(o.metadata.distance or 0.0))
            for o in result.objects
        ]

    def keyword(self, tenant: str, partition: str, text: str, k: int) -> list[IndexHit]:
        from weaviate.classes.query import MetadataQuery

        handle = self._tenant(tenant, create=False)
        if handle is None or not text.strip():
            return []
        result = handle.query.bm25(
            query=canonical_numbers(text),
            limit=k,
            filters=self._in_partition(partition),
            return_metadata=MetadataQuery(score=True),
            return_properties=["chunk_id"],
        )
        return [
            IndexHit(str(o.properties["chunk_id"]), float(o.metadata.score or 0.0))
            for o in result.objects
        ]

    def hybrid(
        self, tenant: str, partition: str, text: str, vector: Vector, k: int
    ) -> list[IndexHit]:
        from weaviate.classes.query import HybridFusion, MetadataQuery

        handle = self._tenant(tenant, create=False)
        if handle is None:
            return []
        result = handle.query.hybrid(
            query=canonical_numbers(text),
            vector=[float(x) for x in vector],
            alpha=HYBRID_ALPHA,
            fusion_type=HybridFusion.RANKED,
            limit=k,
            filters=self._in_partition(partition),
            return_metadata=MetadataQuery(score=True),
            return_properties=["chunk_id"],
        )
        return [
            IndexHit(str(o.properties["chunk_id"]), float(o.metadata.score or 0.0))
            for o in result.objects
        ]

    def count(self, tenant: str, partition: str) -> int:
        handle = self._tenant(tenant, create=False)
        if handle is None:
            return 0
        result = handle.aggregate.over_all(total_count=True, filters=self._in_partition(partition))
        return int(result.total_count or 0)

    def close(self) -> None:
        self._client.close()
