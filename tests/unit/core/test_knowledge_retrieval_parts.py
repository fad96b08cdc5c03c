"""Rank fusion, freshness judged at read time, and what an answer becomes for the agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.knowledge.freshness import judge
from core.knowledge.fusion import rrf
from core.knowledge.schemas import KnowledgeAnswer, KnowledgeHit, WithheldHit
from core.knowledge.voice import EMPTY, PARTIAL_NOTE, tool_result

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_rrf_rewards_agreement_over_a_single_first_place() -> None:
    fused = rrf({"dense": ["a", "b", "c", "d"], "keyword": ["e", "f", "b", "g"]})
    assert [f.item_id for f in fused][:2] == ["b", "a"]
    assert fused[0].ranks == {"dense": 2, "keyword": 3}
    assert {f.item_id for f in fused} == {"a", "b", "c", "d", "e", "f", "g"}
    assert fused[0].score == 1 / 62 + 1 / 63


def test_rrf_counts_a_duplicate_id_once_per_ranking() -> None:
    fused = rrf({"dense": ["a", "a", "b"]})
    assert [(f.item_id, f.ranks["dense"]) for f in fused] == [("a", 1), ("b", 3)]


def test_freshness_is_judged_from_the_last_good_check_and_the_clock() -> None:
    verified = NOW - timedelta(hours=5)
    assert judge(verified_at=verified, max_staleness_s=None, failure_count=0, now=NOW).state == (
        "fresh"
    )
    within = judge(verified_at=verified, max_staleness_s=6 * 3600, failure_count=2, now=NOW)
    assert (within.state, within.servable, within.age_s) == ("failing", True, 5 * 3600)
    past = judge(verified_at=verified, max_staleness_s=4 * 3600, failure_count=0, now=NOW)
    assert (past.state, past.servable) == ("stale", False)
    never = judge(verified_at=None, max_staleness_s=60, failure_count=0, now=NOW)
    assert (never.state, never.servable) == ("pending", False)


def _hit(text: str) -> KnowledgeHit:
    return KnowledgeHit(
        chunk_id="c1", text=text, title="Prices", section="Plumbing", score=0.03,
        similarity=0.8, dense_rank=1, keyword_rank=2, source_id="s1", source_name="prices.md",
        kb_id="kb", position=0, fetched_at=NOW, verified_at=NOW, age_s=0.0, freshness="fresh",
    )  # fmt: skip


def _withheld() -> WithheldHit:
    return WithheldHit(
        chunk_id="c9", source_id="s2", source_name="old-prices.md", section="Plumbing",
        freshness="stale", verified_at=NOW - timedelta(days=60), reason="past",
    )  # fmt: skip


def test_tool_result_quotes_current_hits_with_where_they_come_from() -> None:
    answer = KnowledgeAnswer(
        query="q", normalized_query="q", status="ok", hits=[_hit("Flush:\n$149.")]
    )
    assert tool_result(answer) == "[1] Prices > Plumbing: Flush: $149."


def test_an_outdated_answer_never_carries_the_withheld_text() -> None:
    answer = KnowledgeAnswer(
        query="q",
        normalized_query="q",
        status="outdated",
        withheld=[_withheld()],
        spoken_fallback="Let me check on that.",
    )
    text = tool_result(answer)
    assert text.startswith("OUTDATED") and "old-prices.md" in text
    assert "Let me check on that." in text


def test_partial_and_empty_answers_tell_the_agent_not_to_guess() -> None:
    partial = KnowledgeAnswer(
        query="q", normalized_query="q", status="partial", hits=[_hit("x")], withheld=[_withheld()]
    )
    assert tool_result(partial).endswith(PARTIAL_NOTE)
    assert tool_result(KnowledgeAnswer(query="q", normalized_query="q", status="empty")) == EMPTY


def test_long_results_are_cut_with_a_marker() -> None:
    answer = KnowledgeAnswer(
        query="q", normalized_query="q", status="ok", hits=[_hit("word " * 1000)]
    )
    text = tool_result(answer, limit=200)
    assert len(text) <= 200 and text.endswith("[truncated]")
