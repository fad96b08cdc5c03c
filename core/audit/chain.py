"""The audit hash chain: canonical serialization, link hashes and verification.

Pure functions over plain values, shared by the appender, the verifier and the migration that
backfilled existing rows. The serialization is frozen: changing it breaks every stored chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

GENESIS = "0" * 64
OPERATOR_CHAIN = "-"  # events with no organization (operator-wide) chain together

Problem = Literal["edited", "deleted", "reordered"]


def chain_key(org_id: str | None) -> str:
    return org_id if org_id is not None else OPERATOR_CHAIN


def canonical_time(at: datetime) -> str:
    """Microsecond UTC text; a naive value (as SQLite may return it) is UTC."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def link_hash(
    *,
    org_id: str | None,
    actor: str,
    action: str,
    target: str,
    detail: Mapping[str, Any] | None,
    at: datetime,
    prev_hash: str,
) -> str:
    """sha256 over the row's fields and the previous link. The position (``seq``) is bound by
    ``prev_hash``, so it stays out: a moved row then reads as moved, not as edited."""
    body = json.dumps(
        {
            "org_id": org_id,
            "actor": actor,
            "action": action,
            "target": target,
            "detail": dict(detail or {}),
            "at": canonical_time(at),
            "prev_hash": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    id: int
    org_id: str | None
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any] | None
    at: datetime
    seq: int
    prev_hash: str
    hash: str


def row_hash(r: ChainRow) -> str:
    return link_hash(
        org_id=r.org_id,
        actor=r.actor,
        action=r.action,
        target=r.target,
        detail=r.detail,
        at=r.at,
        prev_hash=r.prev_hash,
    )


@dataclass(frozen=True)
class ChainBreak:
    problem: Problem
    row_id: int | None
    seq: int
    detail: str


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad: ChainBreak | None


def verify_chain(rows: Iterable[ChainRow], head_seq: int, head_hash: str) -> ChainReport:
    """Recompute every link in ``seq`` order; report the first row that does not hold.

    ``rows`` must come ordered by ``seq`` (then id). The head (locked on every append) catches
    rows removed from the end of the chain."""
    ordered = list(rows)
    by_hash = {r.hash: r for r in ordered}
    expected_prev, expected_seq, last_id = GENESIS, 1, 0
    for r in ordered:
        if row_hash(r) != r.hash:
            return _broken(
                expected_seq,
                head_seq,
                head_hash,
                ChainBreak(
                    "edited",
                    r.id,
                    r.seq,
                    f"row {r.id} (#{r.seq}, {r.action}) does not match its hash: it was edited",
                ),
            )
        if r.prev_hash != expected_prev:
            earlier = by_hash.get(r.prev_hash)
            if earlier is not None:
                found = ChainBreak(
                    "reordered",
                    r.id,
                    r.seq,
                    f"row {r.id} (#{r.seq}, {r.action}) belongs after row {earlier.id} "
                    f"(#{earlier.seq}), not at #{expected_seq}: rows were reordered",
                )
            else:
                found = ChainBreak(
                    "deleted",
                    r.id,
                    r.seq,
                    f"the row before row {r.id} (#{r.seq}, {r.action}) is missing: "
                    "it was deleted or rewritten",
                )
            return _broken(expected_seq, head_seq, head_hash, found)
        if r.seq != expected_seq or r.id <= last_id:
            return _broken(
                expected_seq,
                head_seq,
                head_hash,
                ChainBreak(
                    "reordered",
                    r.id,
                    r.seq,
                    f"row {r.id} ({r.action}) is numbered #{r.seq} where #{expected_seq} was "
                    "expected: rows were renumbered or reordered",
                ),
            )
        expected_prev, expected_seq, last_id = r.hash, expected_seq + 1, r.id
    last = expected_seq - 1
    if last < head_seq:
        return _broken(
            expected_seq,
            head_seq,
            head_hash,
            ChainBreak(
                "deleted",
                None,
                expected_seq,
                f"the chain ends at #{last} but its head records #{head_seq}: "
                "the last rows were deleted",
            ),
        )
    if last != head_seq or expected_prev != head_hash:
        return _broken(
            expected_seq,
            head_seq,
            head_hash,
            ChainBreak(
                "edited",
                None,
                last,
                f"the chain head (#{head_seq}) does not match the last row (#{last}): "
                "the head was edited or removed",
            ),
        )
    return ChainReport(True, len(ordered), head_seq, head_hash, None)


def _broken(at_seq: int, head_seq: int, head_hash: str, found: ChainBreak) -> ChainReport:
    return ChainReport(False, at_seq - 1, head_seq, head_hash, found)
