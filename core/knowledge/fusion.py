"""Reciprocal rank fusion (Cormack et al., 2009) of several ranked lists.

Pure: ids in, fused scores out. RRF needs no score calibration between BM25 and cosine, which
is why it is the fusion here; ``k`` dampens the head so one retriever's first place does not
drown agreement further down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RRF_K = 60


@dataclass
class Fused:
    item_id: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # retriever name -> 1-based rank


def rrf(rankings: Mapping[str, Sequence[str]], k: int = RRF_K) -> list[Fused]:
    """Fuse named rankings (best first); ties keep the order of first appearance."""
    fused: dict[str, Fused] = {}
    for name, ids in rankings.items():
        seen: set[str] = set()
        for rank, item_id in enumerate(ids, start=1):
            if item_id in seen:
                continue  # a retriever listing an id twice must not vote twice
            seen.add(item_id)
            entry = fused.setdefault(item_id, Fused(item_id, 0.0))
            entry.score += 1.0 / (k + rank)
            entry.ranks[name] = rank
    return sorted(fused.values(), key=lambda f: f.score, reverse=True)
