"""The per-process query-embedding cache, over the real MiniLM embedder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from connectors.embedder import MiniLMEmbedder
from core.query_cache import CachedQueryEmbedder


class _Counting:
    """The real embedder, counting the texts it was asked to embed."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.texts.extend(texts)
        return self.inner.embed(texts)


def test_a_repeated_query_is_embedded_once_and_gives_the_same_vector(
    embedder: MiniLMEmbedder,
) -> None:
    counting = _Counting(embedder)
    cached = CachedQueryEmbedder(counting, size=2)
    first = cached.embed(["When is my  Appointment?"])
    again = cached.embed(["  when is my appointment? "])
    assert counting.texts == ["When is my  Appointment?"]
    assert (cached.hits, cached.misses) == (1, 1)
    np.testing.assert_array_equal(first, again)
    # The key only folds what the tokenizer folds itself: the vector is the one asked for.
    direct = embedder.embed(["  when is my appointment? "])
    assert float(first[0] @ direct[0]) > 0.9999


def test_batches_pass_through_and_the_cache_is_bounded(embedder: MiniLMEmbedder) -> None:
    counting = _Counting(embedder)
    cached = CachedQueryEmbedder(counting, size=2)
    assert cached.embed(["a b", "c d"]).shape == (2, embedder.dimension)
    for text in ("one", "two", "three", "one"):
        cached.embed_query(text)
    # "one" fell out when "three" came in (size 2), so it was embedded again.
    assert counting.texts == ["a b", "c d", "one", "two", "three", "one"]
    assert cached.hits == 0
    vector = cached.embed_query("three")
    assert cached.hits == 1
    assert not vector.flags.writeable
