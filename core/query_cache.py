"""Query embeddings cached per process: a caller who asks the same thing twice (a repeated
``memory_search``, the same question to the knowledge base) is embedded once.

Keyed by the query with its whitespace collapsed and lower-cased: MiniLM's tokenizer lower-cases
and splits on whitespace itself, so texts with the same key embed to the same vector. Only
single-text calls (queries) are cached; batches (writes) pass straight through. Bounded (least
recently used first out) and thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from core.ports import Embedder, Vector

QUERY_CACHE_SIZE = 512


def query_key(text: str) -> str:
    return " ".join(text.split()).lower()


class CachedQueryEmbedder:
    """An ``Embedder`` that remembers the vectors of its last ``size`` distinct queries."""

    def __init__(self, embedder: Embedder, size: int = QUERY_CACHE_SIZE) -> None:
        self.inner = embedder
        self.dimension = embedder.dimension
        self._size = size
        self._lock = threading.Lock()
        self._vectors: OrderedDict[str, Vector] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def embed_query(self, text: str) -> Vector:
        key = query_key(text)
        with self._lock:
            hit = self._vectors.get(key)
            if hit is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
                return hit
            self.misses += 1
        vector: Vector = self.inner.embed([text])[0]
        vector.setflags(write=False)  # shared between requests
        with self._lock:
            self._vectors[key] = vector
            if len(self._vectors) > self._size:
                self._vectors.popitem(last=False)
        return vector

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if len(texts) == 1:
            return self.embed_query(texts[0])[None, :]
        return self.inner.embed(texts)
