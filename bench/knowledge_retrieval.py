"""Retrieval quality over the demo knowledge base, clean and through simulated ASR noise.

The demo base (``examples/knowledge``) is ingested exactly as production does it (knowledge
service + llama-index pipeline + MiniLM + the embedded index, SQLite in a temp dir). The
questions (``bench/data/kb_questions.json``) were written and frozen before any tuning; their
sha256 is printed and checked. Each question is asked clean, and at 10% and 20% word error rate
(``bench.asr_noise``: sound-alikes from its own list, deletions, fillers, numbers spoken out,
acronyms spelled), several noisy samples per question. A retrieved chunk answers a question
when the text the agent receives for it (``core.knowledge.voice.hit_text``: its section path,
then its body) contains every ``answer_contains`` string (whitespace-collapsed,
case-insensitive).

Reported per configuration: hit@1, hit@5 and MRR@10, for dense only, BM25 only, hybrid (RRF),
and hybrid + the speech-to-text normalizer (plus dense/BM25 + normalizer for insight).

    python -m bench.knowledge_retrieval [--samples 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.asr_noise import corrupt
from bench.common import table, write_json

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "bench" / "data" / "kb_questions.json"
FROZEN_SHA256 = "fa72252d6d2c313669261636de6b43c6c45df3ca70faf8f01e93b4c102d75065"
DEMO = ROOT / "examples" / "knowledge"
CONDITIONS = (("clean", 0.0), ("WER 10%", 0.10), ("WER 20%", 0.20))
CONFIGS = (
    ("dense only", "dense", False),
    ("BM25 only", "keyword", False),
    ("hybrid (RRF)", "hybrid", False),
    ("hybrid + normalizer", "hybrid", True),
    ("dense + normalizer", "dense", True),
    ("BM25 + normalizer", "keyword", True),
)
K = 10


@dataclass
class Score:
    hit1: int = 0
    hit5: int = 0
    rr: float = 0.0
    n: int = 0

    def add(self, rank: int | None) -> None:
        self.n += 1
        if rank is not None:
            self.hit1 += rank == 1
            self.hit5 += rank <= 5
            self.rr += 1.0 / rank

    def row(self) -> tuple[str, str, str]:
        n = max(self.n, 1)
        return f"{self.hit1 / n:.3f}", f"{self.hit5 / n:.3f}", f"{self.rr / n:.3f}"


def say(msg: str) -> None:
    print(f"[knowledge_retrieval] {msg}", file=sys.stderr, flush=True)


def load_questions() -> list[dict[str, Any]]:
    raw = QUESTIONS.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != FROZEN_SHA256:
        raise SystemExit(
            f"{QUESTIONS} changed (sha256 {digest}); the question set is frozen: add a new "
            "versioned file instead of editing this one"
        )
    questions: list[dict[str, Any]] = json.loads(raw)["questions"]
    return questions


def answers(text: str, needles: list[str]) -> bool:
    hay = " ".join(text.split()).lower()
    return all(n.lower() in hay for n in needles)


def build_demo_base(workdir: Path) -> tuple[Any, Any, str]:
    """The demo knowledge base, ingested through the production path. Returns (engine,
    retriever, agent id)."""
    from cli.ops import migrate
    from connectors.embedder import shared_embedder
    from connectors.knowledge import build_fetcher, build_ingestor, build_knowledge_index
    from core.db import make_engine, session_scope, utcnow
    from core.egress import EgressPolicy
    from core.knowledge.retrieval import KnowledgeRetriever
    from core.knowledge.schemas import SourceCreate
    from core.knowledge.service import KnowledgeIndexing, KnowledgeService
    from core.tenancy.schemas import AgentCreate, OrganizationCreate
    from core.tenancy.service import TenancyService

    url = f"sqlite:///{workdir / 'backline.db'}"
    migrate(url)
    engine = make_engine(url)
    embedder = shared_embedder()
    embedder.warm_up()
    index = build_knowledge_index(workdir)
    ingestor = build_ingestor(embedder)
    fetcher = build_fetcher(EgressPolicy())
    with session_scope(engine) as session:
        tenancy = TenancyService(session, "bench-secret", "bench-admin")
        tenancy.create_org(OrganizationCreate(id="bench", name="Bench"), "bench")
        tenancy.create_agent("bench", AgentCreate(id="demo", name="Acme"), "bench")
    started = time.perf_counter()
    chunks = 0
    for path in sorted(DEMO.iterdir()):
        with session_scope(engine) as session:
            source = KnowledgeService(session).add_source(
                "bench",
                "demo",
                SourceCreate(
                    kind="file",
                    name=path.name,
                    filename=path.name,
                    content_base64=base64.b64encode(path.read_bytes()).decode(),
                ),
                "bench",
            )
            source_id = source.id
        now = utcnow()
        with session_scope(engine) as session:
            fetched = KnowledgeService(session).fetch(source_id, fetcher, now)
        assert fetched.content_hash is not None
        with session_scope(engine) as session:
            svc = KnowledgeIndexing(session, index, embedder)
            outcome = svc.ingest(source_id, fetched.content_hash, ingestor)
            assert outcome is not None
            chunks += outcome.chunk_count
        for ops in svc.apply_pending_index():
            with session_scope(engine) as session:
                KnowledgeService(session).clear_outbox(ops.source_id, ops.token)
        with session_scope(engine) as session:
            KnowledgeService(session).mark_fresh(source_id, now)
    say(f"ingested {chunks} chunks from {DEMO} in {time.perf_counter() - started:.1f}s")
    return engine, KnowledgeRetriever(embedder, index), "demo"


def run(samples: int, seed: int) -> dict[str, Any]:
    from sqlmodel import Session

    from core.knowledge.voice import hit_text

    questions = load_questions()
    say(f"{len(questions)} questions, sha256 {FROZEN_SHA256[:16]}… (frozen)")
    with tempfile.TemporaryDirectory(prefix="backline-kbq-") as tmp:
        engine, retriever, agent = build_demo_base(Path(tmp))
        rng = random.Random(seed)
        asked: dict[str, list[tuple[dict[str, Any], str]]] = {}
        examples: dict[str, list[str]] = {}
        for name, wer in CONDITIONS:
            reps = 1 if wer == 0 else samples
            # Clean is the question as written; noisy ones are ASR-shaped (spoken numbers too).
            asked[name] = [
                (q, q["question"] if wer == 0 else corrupt(q["question"], wer, rng))
                for q in questions
                for _ in range(reps)
            ]
            examples[name] = [heard for _, heard in asked[name][:3]]
        scores: dict[tuple[str, str], Score] = {}
        misses: dict[str, list[str]] = {}
        with Session(engine) as session:
            for cond, _wer in CONDITIONS:
                for label, mode, normalized in CONFIGS:
                    score = scores.setdefault((cond, label), Score())
                    for question, heard in asked[cond]:
                        answer = retriever.search(
                            session, agent, heard, k=K, use_normalizer=normalized, mode=mode
                        )
                        rank = next(
                            (
                                i
                                for i, hit in enumerate(answer.hits, start=1)
                                if answers(hit_text(hit), question["answer_contains"])
                            ),
                            None,
                        )
                        score.add(rank)
                        if rank != 1 and label == "hybrid + normalizer":
                            misses.setdefault(cond, []).append(
                                f"{question['id']}: {heard!r} -> rank {rank}"
                            )
                    say(f"{cond:8s} {label:22s} hit@1/hit@5/MRR {score.row()}")
        engine.dispose()
    rows = [
        [label, *scores[(cond, label)].row(), str(scores[(cond, label)].n)]
        for cond, _ in CONDITIONS
        for label, _, _ in CONFIGS
    ]
    conds = [cond for cond, _ in CONDITIONS for _ in CONFIGS]
    return {
        "questions": len(questions),
        "samples_per_noisy_question": samples,
        "seed": seed,
        "questions_sha256": FROZEN_SHA256,
        "results": [
            {
                "condition": c,
                "config": r[0],
                "hit@1": r[1],
                "hit@5": r[2],
                "mrr@10": r[3],
                "n": r[4],
            }
            for c, r in zip(conds, rows, strict=True)
        ],
        "examples": examples,
        "misses_hybrid_normalizer": misses,
        "table": table(
            ["condition", "configuration", "hit@1", "hit@5", "MRR@10", "queries"],
            [[c, *r] for c, r in zip(conds, rows, strict=True)],
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=3, help="noisy samples per question")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = run(args.samples, args.seed)
    print(result["table"])
    for cond, heard in result["examples"].items():
        print(f"\n{cond} examples: " + " | ".join(heard))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
