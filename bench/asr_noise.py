"""A speech-to-text noise simulator for retrieval benchmarks: what a question looks like after
ASR at a chosen word error rate.

Noise, per word, at ``wer``: sound-alike substitutions (from this module's own confusion list,
written from common ASR error patterns; it deliberately shares nothing with
``core.knowledge.normalize``, so the benchmark measures the normalizer rather than a copy of
its list), deletions, and inserted fillers; on top, as ASR transcripts usually do, numbers are
spoken out ("$149" -> "one hundred forty nine dollars") and acronyms spelled ("AC" -> "a c"),
and punctuation and case are dropped. Deterministic for a seed. Only benchmarks use this.
"""

from __future__ import annotations

import random
import re

SOUND_ALIKES: dict[str, tuple[str, ...]] = {
    "flush": ("flash", "flesh"), "heater": ("heeter", "header"), "water": ("waiter", "wader"),
    "drain": ("train", "rain"), "price": ("prize", "pries"), "cost": ("coast", "caused"),
    "fee": ("free", "fear"), "fees": ("freeze", "ease"), "fan": ("van", "fun"),
    "duct": ("duck", "ducked"), "furnace": ("furnish", "furnaces"), "filter": ("fielder",),
    "tune-up": ("tuna", "tune of"), "sewer": ("sower", "sore"), "charge": ("large", "charged"),
    "thanksgiving": ("thanks giving", "tanks giving"), "warranty": ("warrant he", "warren tee"),
    "plan": ("plane", "plant"), "open": ("opened", "hope in"), "hours": ("ours", "flowers"),
    "weekdays": ("week days", "weak days"), "cancel": ("counsel", "cancer"),
    "cash": ("catch", "cache"), "install": ("in stall", "instal"), "travel": ("trouble",),
    "panel": ("channel", "panels"), "outlet": ("out let", "outlook"),
    "licensed": ("listened", "license"), "insured": ("ensured", "in sure"),
    "estimate": ("estimated", "is to mate"), "membership": ("member ship", "members hip"),
    "transfer": ("transferred", "trans fur"), "sunday": ("someday", "sundae"),
    "sundays": ("sundaes", "some days"), "saturday": ("saturdays", "sat today"),
    "labor": ("later", "neighbor"), "repair": ("prepare", "reap air"),
    "dishwasher": ("dish washer", "fish washer"), "thermostat": ("thermal stat",),
    "gallon": ("galen", "gallons"), "tankless": ("thankless", "tank less"),
    "camera": ("comer", "camry"), "inspection": ("in section", "inspections"),
    "refrigerant": ("refrigerator", "reverend"), "credit": ("credits", "cradit"),
    "financing": ("finance in", "fine answering"), "interest": ("entrance", "in trust"),
    "technicians": ("technician", "tech nations"), "background": ("back ground",),
    "emergency": ("emergence", "a merchant see"), "christmas": ("kiss miss", "christmases"),
    "eve": ("eave", "even"), "labor day": ("neighbor day",), "oakland": ("oak land",),
    "hayward": ("hey word", "haywood"), "walnut": ("wall nut",), "creek": ("creak", "crick"),
    "francisco": ("fran cisco",), "commercial": ("comma shall",), "offices": ("office is",),
    "depot": ("de po", "deep oh"), "quote": ("coat", "vote"), "dog": ("doug", "dug"),
    "cards": ("cars", "guards"), "percent": ("per cent", "pursuit"), "zero": ("hero",),
    "nest": ("next", "nets"), "ceiling": ("sealing", "selling"), "charger": ("charter",),
    "yearly": ("early", "yearling"), "month": ("mouth", "munch"), "sell": ("cell", "sale"),
    "gas": ("guess", "gasp"), "smell": ("small", "spell"), "arrival": ("a rival", "arrivals"),
    "windows": ("widows", "winters"), "background checked": ("back round checked",),
    "friday": ("fried day", "fri day"), "register": ("registered", "rich is her"),
    "leaking": ("leaking", "licking"), "blowing": ("blowing", "bowling"),
    "warm": ("worm", "warn"), "air": ("heir", "are"), "service": ("serve is", "surface"),
    "diagnostic": ("diagnostics", "dying gnostic"), "trip": ("strip", "drip"),
    "replace": ("replays", "re place"), "clogged": ("clocked", "logged"),
    "kitchen": ("chicken", "kitten"), "panel upgrade": ("panel up grade",),
}  # fmt: skip
FILLERS = ("um", "uh", "like", "you know", "so", "uh huh", "hmm", "I mean")
FILLER_RATE = 0.35  # share of the error budget spent on inserted fillers
DELETE_RATE = 0.25  # share spent on deletions; the rest substitutes

ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ACRONYM = re.compile(r"^[A-Z]{2,5}s?$")


def number_words(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        head = number_words(n // 1000) + " thousand"
        return head + ("" if rest == 0 else " " + number_words(rest))
    return str(n)


def speak(text: str) -> list[str]:
    """What ASR writes for a clean sentence: numbers spoken, acronyms spelled, no punctuation."""
    words: list[str] = []
    for raw in text.split():
        token = raw.strip("?.,!:;\"'()")
        money = re.fullmatch(r"\$?([\d,]+)(%?)", token)
        if money and money.group(1).replace(",", "").isdigit():
            spoken = number_words(int(money.group(1).replace(",", "")))
            words.extend(spoken.split())
            if token.startswith("$"):
                words.append("dollars")
            if money.group(2):
                words.append("percent")
            continue
        if ACRONYM.match(token):
            words.extend(ch.lower() for ch in token.rstrip("s"))
            continue
        if token:
            words.append(token.lower())
    return words


def corrupt(text: str, wer: float, rng: random.Random) -> str:
    """``text`` as heard at word error rate ``wer`` (errors counted against the spoken words)."""
    words = speak(text)
    if wer <= 0:
        return " ".join(words)
    expected = wer * len(words)
    # Stochastic rounding: over many questions the error count averages exactly wer x words.
    errors = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
    out = list(words)
    for _ in range(errors):
        roll = rng.random()
        if roll < FILLER_RATE:
            out.insert(rng.randrange(len(out) + 1), rng.choice(FILLERS))
            continue
        content = [i for i, w in enumerate(out) if w not in FILLERS and len(w) > 2]
        if not content:
            continue
        i = rng.choice(content)
        if roll < FILLER_RATE + DELETE_RATE:
            del out[i]
            continue
        alike = SOUND_ALIKES.get(out[i])
        out[i] = rng.choice(alike) if alike else rng.choice(("the", "a", "and", "in", "it"))
    return " ".join(out)
