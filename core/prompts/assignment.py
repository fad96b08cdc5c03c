"""Sticky assignment of callers to experiment variants.

A caller's bucket is a hash of the experiment's key and the caller's key, mapped to [0, 1).
Variants take consecutive slices of [0, 1) in their stored order (canary first, control last),
so a caller keeps their variant for the whole experiment, and when a canary's weight grows its
slice only extends into control's: callers already on the canary stay there. Pure functions:
no randomness, no clock, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

_SCALE = float(1 << 64)


@dataclass(frozen=True)
class Variant:
    version: int
    weight: float


def bucket(experiment_key: str, caller_key: str) -> float:
    """Uniform in [0, 1), stable for a (experiment, caller) pair. The caller key is already
    a keyed hash (never a raw number); SHA-256 only spreads it."""
    digest = hashlib.sha256(f"{experiment_key}\x00{caller_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def choose(variants: Sequence[Variant], point: float) -> Variant:
    """The variant whose cumulative-weight slice holds ``point``. Weights are normalized by
    their sum; the last variant (control) absorbs rounding."""
    total = sum(v.weight for v in variants)
    if not variants:
        raise ValueError("an experiment needs at least one variant")
    if total <= 0:
        return variants[-1]
    edge = 0.0
    for variant in variants[:-1]:
        edge += variant.weight / total
        if point < edge:
            return variant
    return variants[-1]


def assign(experiment_key: str, caller_key: str, variants: Sequence[Variant]) -> Variant:
    return choose(variants, bucket(experiment_key, caller_key))
