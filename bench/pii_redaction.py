"""PII redaction recall and precision on labelled voice-call transcripts.

Runs each detector over bench/data/pii_transcripts.jsonl (frozen; see pii_transcripts.md) and
prints recall per labelled type, precision per detected type and how many hard negatives
(order numbers, prices, times...) were redacted. Detectors:

* ``rules``: Backline's redaction (core.pii.redact.find_pii), default policy.
* ``presidio``: presidio-analyzer's pattern recognizers (no NLP engine, no spaCy model) on the
  raw text: credit card, SSN, UK NINO, IBAN, ABA routing, US bank number, e-mail, phone, date.
* ``presidio+spoken``: the same recognizers on the text after Backline's spoken-digit rewriting
  ("four one five..." -> "415..."), mapped back to the original offsets.

presidio is not a dependency of Backline; install it anywhere and point ``--presidio-path`` at
it (``pip install --target /tmp/presidio presidio-analyzer``), or leave it out and only the
rules run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.common import machine_info, table
from core.pii.redact import _Working, find_pii
from evals.pii_redaction import PATTERN_TYPES, TYPES, load_labelled, score

DATA = Path(__file__).resolve().parent / "data" / "pii_transcripts.jsonl"
RECALL_FLOOR = 0.95

Detector = Callable[[str, str], Iterable[tuple[int, int, str]]]

_PRESIDIO_KIND = {
    "CREDIT_CARD": "card",
    "US_SSN": "ssn",
    "UK_NINO": "national_id",
    "IBAN_CODE": "iban",
    "ABA_ROUTING_NUMBER": "bank_account",
    "US_BANK_NUMBER": "bank_account",
    "EMAIL_ADDRESS": "email",
    "PHONE_NUMBER": "phone",
    "DATE_TIME": "dob",
}


def rules_detector(text: str, context: str) -> list[tuple[int, int, str]]:
    return [(f.start, f.end, f.kind) for f in find_pii(text, context=context)]


def presidio_detectors(path: str | None, threshold: float) -> dict[str, Detector]:
    if path:
        sys.path.append(path)
    try:
        from presidio_analyzer import predefined_recognizers as pr  # type: ignore[import-not-found]
    except ImportError:
        return {}
    recognizers = [
        pr.CreditCardRecognizer(),
        pr.UsSsnRecognizer(),
        pr.UkNinoRecognizer(),
        pr.IbanRecognizer(),
        pr.AbaRoutingRecognizer(),
        pr.UsBankRecognizer(),
        pr.EmailRecognizer(),
        pr.PhoneRecognizer(),
        pr.DateRecognizer(),
    ]

    def raw(text: str, context: str = "") -> list[tuple[int, int, str]]:
        found: list[tuple[int, int, str]] = []
        for recognizer in recognizers:
            for r in recognizer.analyze(text, recognizer.supported_entities, None):
                if r.score >= threshold:
                    found.append((r.start, r.end, _PRESIDIO_KIND[r.entity_type]))
        return found

    def spoken(text: str, context: str) -> list[tuple[int, int, str]]:
        working = _Working(text)
        return [(*working.to_original(s, e), kind) for s, e, kind in raw(working.text)]

    return {"presidio": raw, "presidio+spoken": spoken}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--data", default=str(DATA), help="labelled JSONL (default: the frozen set)"
    )
    parser.add_argument(
        "--presidio-path", help="directory holding presidio-analyzer, if not importable"
    )
    parser.add_argument(
        "--presidio-threshold",
        type=float,
        default=0.0,
        help="drop presidio results below this score",
    )
    parser.add_argument("--only", choices=["rules", "presidio", "presidio+spoken"], action="append")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--show-misses", action="store_true", help="list missed spans and false positives"
    )
    args = parser.parse_args()

    turns = load_labelled(Path(args.data))
    detectors: dict[str, Detector] = {"rules": rules_detector}
    detectors.update(presidio_detectors(args.presidio_path, args.presidio_threshold))
    if args.only:
        detectors = {k: v for k, v in detectors.items() if k in args.only}

    results: dict[str, Any] = {"machine": machine_info(), "data": args.data, "detectors": {}}
    for name, detect in detectors.items():
        started = time.perf_counter()
        result = score(turns, detect)
        elapsed = time.perf_counter() - started
        entry = result.as_dict()
        entry["ms_per_turn"] = round(1000 * elapsed / len(turns), 3)
        entry["recall_floor_met"] = all(result.recall(t) >= RECALL_FLOOR for t in PATTERN_TYPES)
        results["detectors"][name] = entry

    if args.json:
        print(json.dumps(results, indent=2))
        return
    names = list(results["detectors"])
    rows = []
    for t in TYPES:
        labelled = next(iter(results["detectors"].values()))["labelled"].get(t, 0)
        row: list[Any] = [t, labelled]
        for name in names:
            d = results["detectors"][name]
            precision = d["precision"].get(t)
            row.append(f"{d['recall'][t]:.3f}")
            row.append("-" if precision is None else f"{precision:.3f} ({d['detected'][t]})")
        rows.append(row)
    negatives = [
        "hard negatives redacted",
        next(iter(results["detectors"].values()))["hard_negatives"],
    ]
    timing = ["ms per turn", ""]
    floor = [f"recall >= {RECALL_FLOOR} on {', '.join(PATTERN_TYPES)}", ""]
    for name in names:
        d = results["detectors"][name]
        negatives += [str(d["hard_negatives_redacted"]), ""]
        timing += [str(d["ms_per_turn"]), ""]
        floor += ["yes" if d["recall_floor_met"] else "no", ""]
    headers = ["type", "labelled"]
    for name in names:
        headers += [f"{name} recall", f"{name} precision (n)"]
    print(f"{len(turns)} turns from {args.data}")
    print(table(headers, [*rows, negatives, timing, floor]))
    if args.show_misses:
        for name in names:
            d = results["detectors"][name]
            print(f"\n{name}: missed")
            for call_id, kind, text in d["missed"]:
                print(f"  {call_id} {kind}: {text}")
            print(f"{name}: false positives")
            for call_id, kind, text in d["false_positives"]:
                print(f"  {call_id} {kind}: {text}")


if __name__ == "__main__":
    main()
