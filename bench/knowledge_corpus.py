"""A large synthetic knowledge base for latency benchmarks, and its MiniLM vectors (cached).

Chunks read like a home-services company's knowledge pages (services, prices, policies, areas,
schedules, troubleshooting), three sentences each, deterministic for a seed. Their vectors are
real MiniLM embeddings (not random vectors, whose lack of structure makes ANN look worse than
it is on text) of each chunk's first sentence: embedding whole chunks would take over half an
hour on two shared cores, and the vectors' structure (what the ANN index sees) is the same
kind; the keyword index gets the whole chunk. Computed once and cached under
``.backline/bench/``. Only the benchmarks use this.

    python -m bench.knowledge_corpus --n 100000   # builds the cache (prints progress)
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".backline" / "bench"

SERVICES = (
    "water heater flush", "tank water heater replacement", "tankless water heater install",
    "drain cleaning", "main sewer line cleaning", "sewer camera inspection", "toilet repair",
    "garbage disposal replacement", "leak detection", "air conditioner tune-up",
    "furnace tune-up", "heat pump tune-up", "refrigerant recharge", "air duct cleaning",
    "smart thermostat installation", "central air conditioner install", "outlet replacement",
    "GFCI outlet installation", "ceiling fan installation", "electrical panel upgrade",
    "EV charger installation", "whole-home surge protector", "refrigerator repair",
    "washer repair", "dryer vent cleaning", "dishwasher repair", "oven repair",
    "sump pump replacement", "water softener install", "gas line repair", "boiler service",
    "mini-split installation", "attic insulation", "gutter cleaning", "garage door repair",
)  # fmt: skip
CITIES = (
    "Oakland", "Berkeley", "Alameda", "Richmond", "Hayward", "Fremont", "Concord", "Dublin",
    "Walnut Creek", "San Leandro", "Castro Valley", "Orinda", "Lafayette", "Moraga",
    "Pleasant Hill", "Union City", "Emeryville", "Albany", "Piedmont", "El Cerrito",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
BRANDS = ("Rheem", "Bradford White", "Navien", "Carrier", "Lennox", "Trane", "Nest", "ecobee")
SENTENCES = (
    "The {svc} costs ${p} for most homes, including labor and standard parts.",
    "We schedule {svc} visits in two-hour windows from {h} AM, {d} through Saturday.",
    "Customers in {c} pay a ${t} travel fee for a {svc}; members pay none.",
    "A {svc} carries a {w}-year labor warranty on top of the {b} parts warranty.",
    "Before booking a {svc}, check the breaker and the shut-off valve near the {thing}.",
    "Emergency {svc} calls after 7 PM add a ${s} surcharge unless you are on the care plan.",
    "Our technicians finish a typical {svc} in about {m} minutes and clean up afterwards.",
    "Financing for a {svc} over $1,000 runs {mo} months at {r}% for approved customers.",
    "If the {svc} fails within {dd} days, we return and fix it at no charge.",
    "Permits for a {svc} in {c} take about {dd} days and cost ${pp} extra.",
    "Cancel a {svc} appointment at least 24 hours ahead to avoid the ${f} fee.",
    "We stock {b} parts for the {svc}, so most repairs finish on the first visit.",
)
THINGS = ("water meter", "furnace", "electrical panel", "water heater", "outdoor unit", "sink")


def chunk_texts(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    for i in range(n):
        parts = []
        svc = rng.choice(SERVICES)
        for template in rng.sample(SENTENCES, 3):
            parts.append(
                template.format(
                    svc=svc,
                    p=rng.randrange(60, 4000),
                    h=rng.choice((7, 8, 9, 11, 1, 3)),
                    d=rng.choice(DAYS),
                    c=rng.choice(CITIES),
                    t=rng.choice((0, 35, 65, 95)),
                    w=rng.choice((1, 2, 5)),
                    b=rng.choice(BRANDS),
                    thing=rng.choice(THINGS),
                    s=rng.choice((75, 95, 125)),
                    m=rng.randrange(30, 240, 15),
                    mo=rng.choice((6, 12, 18, 24)),
                    r=rng.choice((0, 4.9, 7.9, 9.9)),
                    dd=rng.choice((7, 14, 30, 60, 90)),
                    pp=rng.randrange(50, 600, 25),
                    f=rng.choice((25, 50, 75)),
                )
            )
        out.append(f"[{i}] " + " ".join(parts))
    return out


def lead_sentence(chunk: str) -> str:
    return chunk.split(". ", 1)[0] + "."


def embeddings(
    n: int, seed: int = 11, batch: int = 256, quiet: bool = False
) -> npt.NDArray[np.float32]:
    """MiniLM vectors of ``chunk_texts(n, seed)``, from the cache when it has them."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"knowledge_corpus_{n}_{seed}.npy"
    if path.exists():
        cached = np.load(path)
        if cached.shape == (n, 384):
            return np.asarray(cached, dtype=np.float32)
    from connectors.embedder import shared_embedder

    texts = [lead_sentence(t) for t in chunk_texts(n, seed)]
    embedder = shared_embedder()
    out = np.zeros((n, 384), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, n, batch):
        out[start : start + batch] = embedder.embed(texts[start : start + batch])
        if not quiet and (start // batch) % 8 == 0:
            done = start + batch
            rate = done / max(time.perf_counter() - started, 1e-9)
            print(f"embedded {min(done, n)}/{n} ({rate:.0f}/s)", file=sys.stderr, flush=True)
    np.save(path, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    vectors = embeddings(args.n)
    print(f"{vectors.shape} cached in {CACHE}")


if __name__ == "__main__":
    main()
