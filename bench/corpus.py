"""Realistic caller-memory texts and search queries for a home-services voice agent.

Deterministic for a seed. Used to seed memories (lookup benchmark) and to build end-of-call
transcripts whose rule-based analysis yields a summary and facts (post-call benchmarks).
"""

from __future__ import annotations

import random

NAMES = (
    "Dana",
    "Marcus",
    "Priya",
    "Elena",
    "Tomas",
    "Aisha",
    "Kenji",
    "Laura",
    "Omar",
    "Sofia",
    "Grace",
    "Victor",
    "Nadia",
    "Hector",
    "Yuki",
    "Brian",
    "Chloe",
    "Darius",
    "Fatima",
    "Glen",
    "Irene",
    "Jamal",
    "Katrin",
    "Luis",
    "Mei",
    "Nolan",
    "Olga",
    "Pavel",
    "Rosa",
    "Samir",
    "Tessa",
    "Umar",
    "Vera",
    "Wes",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Andre",
    "Bianca",
    "Carlos",
)
ISSUES = (
    "water heater leaking in the garage",
    "furnace making a banging noise at night",
    "air conditioner not cooling the upstairs bedrooms",
    "kitchen sink clogged again",
    "garage door opener stuck halfway",
    "circuit breaker tripping when the dryer runs",
    "dishwasher not draining",
    "roof leak above the back bedroom",
    "low water pressure in the shower",
    "thermostat showing a blank screen",
    "smoke detector chirping in the hallway",
    "toilet running constantly",
    "sump pump failing after heavy rain",
    "outlet sparking in the living room",
    "washing machine leaking onto the laundry floor",
    "heat pump frozen over",
    "bathroom exhaust fan rattling",
    "frozen pipe under the kitchen",
    "gas smell near the stove",
    "ceiling fan wobbling in the den",
    "sewer backup in the basement",
    "broken window latch",
    "mold spot behind the bathroom vanity",
    "water softener beeping",
    "hot water running out after five minutes",
    "attic insulation falling through a vent",
    "doorbell camera offline",
    "tankless heater error code E12",
    "mini split dripping water",
    "gutter pulling away from the roof",
)
TECHS = ("Sam", "Rita", "Joe", "Ana", "Mike", "Lena", "Raj", "Kim")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
SLOTS = ("morning", "early afternoon", "late afternoon", "8 to 10 am", "noon to 2 pm")
PARTS = (
    "pressure valve",
    "thermocouple",
    "igniter",
    "capacitor",
    "flapper",
    "drain pump",
    "circuit breaker",
    "blower motor",
    "float switch",
    "control board",
)
CHANNELS = ("email", "text", "phone")
OUTCOMES = (
    "booked {tech} for {day} {slot}",
    "scheduled a technician visit for {day} {slot}",
    "quoted ${price} for the repair and the caller wants to think about it",
    "sent {tech} who replaced the {part}; the caller confirmed it works now",
    "escalated to a supervisor after the second missed appointment",
    "moved the appointment to {day} {slot} at the caller's request",
    "applied a ${credit} credit for the delay",
    "explained the warranty covers the {part} but not labor",
    "took a deposit of ${price} and ordered the {part}",
    "cancelled the visit because the issue resolved itself",
)
TEMPLATES = (
    "{name} called about the {issue}. We {outcome}. Work order {order}.",
    "Caller {name} reported the {issue}; we {outcome}. Prefers {channel} for updates.",
    "Follow-up on order {order}: {name} says the {issue} is back. We {outcome}.",
    "{name} asked about the bill for order {order} and mentioned the {issue}. We {outcome}.",
    "Returning caller {name}: {issue}. We {outcome}. Confirmation goes by {channel}.",
)
QUERIES = (
    "last order status",
    "water heater appointment",
    "what did the technician replace",
    "preferred contact method",
    "previous quote for the repair",
    "when is the plumber coming",
    "billing question about the last order",
    "was there a warranty on the part",
    "earlier complaint about a missed appointment",
    "credit applied to the account",
    "air conditioner problem",
    "furnace noise",
    "roof leak history",
    "deposit paid",
    "which technician came last time",
    "leak in the garage",
    "reschedule request",
    "gas smell report",
    "outlet sparking",
    "what day was the visit booked",
)


def _fill(rng: random.Random, name: str | None = None) -> str:
    outcome = rng.choice(OUTCOMES).format(
        tech=rng.choice(TECHS),
        day=rng.choice(DAYS),
        slot=rng.choice(SLOTS),
        price=rng.randrange(90, 2400, 5),
        credit=rng.choice((25, 40, 50, 75, 100)),
        part=rng.choice(PARTS),
    )
    return rng.choice(TEMPLATES).format(
        name=name or rng.choice(NAMES),
        issue=rng.choice(ISSUES),
        outcome=outcome,
        order=rng.randrange(1000, 99999),
        channel=rng.choice(CHANNELS),
    )


def memory_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct call summaries."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen[_fill(rng)] = None
    return list(seen)


def call_turns(rng: random.Random, name: str) -> list[tuple[str, str]]:
    """A short, varied call transcript (agent/caller turns) with a name, an order number, a
    problem and a contact preference, so the rule-based analysis finds a summary and facts."""
    issue = rng.choice(ISSUES)
    order = rng.randrange(1000, 99999)
    day, slot, tech = rng.choice(DAYS), rng.choice(SLOTS), rng.choice(TECHS)
    channel = rng.choice(CHANNELS)
    return [
        ("agent", "Hi, thanks for calling Acme Home Services. How can I help?"),
        ("caller", f"Hi, my name is {name}. The {issue}."),
        ("agent", f"I'm sorry to hear that. I can book {tech} for {day} {slot}."),
        ("caller", f"That works. My order number is {order}."),
        ("agent", f"Booked. Your work order is {order}. How should we confirm?"),
        ("caller", f"I prefer {channel} for the confirmation, please."),
        ("agent", f"Done, you'll get a confirmation by {channel}. Anything else?"),
        ("caller", "No, that's all, thank you."),
    ]
