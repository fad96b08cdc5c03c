"""Non-LLM call analysis: an extractive summary and rule-based facts from a transcript.

This is the path every deployment has, LLM or not, so it must stay deterministic (same turns,
same output), pure (no I/O, no clock, no randomness) and cheap. It never calls a model or any
outside system, and it never invents text: the summary is made of the call's own sentences.
Facts come from the caller's own words only; what the agent said is never a fact about the
caller.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from core.calls.events import Role, Turn
from core.pii.address import street_addresses
from core.pii.policy import PiiPolicy
from core.pii.redact import redact

METHOD_RULES = "extractive+rules"
METHOD_LLM = "llm"

FACT_KEYS: tuple[str, ...] = (
    "name",
    "contact_preference",
    "city",
    "order_id",
    "account_id",
    "language",
    "appointment",
    "allergy",
    "address",
)
"""Every fact key Backline stores; the LLM analyzer is held to the same vocabulary.

``address`` (a street address) is only ever stored for an agent whose PII policy keeps
addresses: see :func:`redact_analysis`."""

CONTACT_CHANNELS: tuple[str, ...] = ("email", "text", "phone")


class ExtractedFact(BaseModel):
    key: str
    value: str


class CallAnalysis(BaseModel):
    summary: str
    facts: list[ExtractedFact]
    method: str


# --------------------------------------------------------------------------------------------
# Shared vocabulary


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves i'm i've i'll i'd it's that's don't can't won't didn't doesn't isn't wasn't
    you're we're they're what's there's let's here's couldn't wouldn't shouldn't
    get got go going gonna wanna want need like know see say said tell told make one two well
    really actually maybe still even much many way thing things something anything yet
    """
)

# Words that carry no content in a phone call: greetings, back-channel, politeness.
FILLERS = _wordset(
    """
    hi hello hey hiya morning afternoon evening thanks thank please bye goodbye okay ok
    yeah yes yep yup no nope sure alright right great perfect awesome cool fine oh um uh
    uhm er erm hmm mm mhm uh-huh wow appreciate welcome sorry
    """
)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTH_ABBREVIATIONS = {
    "jan": "january",
    "feb": "february",
    "mar": "march",
    "apr": "april",
    "jun": "june",
    "jul": "july",
    "aug": "august",
    "sep": "september",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}

_LANGUAGES = (
    "english",
    "spanish",
    "french",
    "german",
    "italian",
    "portuguese",
    "mandarin",
    "cantonese",
    "chinese",
    "japanese",
    "korean",
    "vietnamese",
    "tagalog",
    "arabic",
    "russian",
    "hindi",
    "polish",
    "dutch",
    "greek",
    "turkish",
    "ukrainian",
    "haitian creole",
    "farsi",
)
_LANGUAGE_ALIASES = {
    "español": "spanish",
    "espanol": "spanish",
    "français": "french",
    "francais": "french",
    "deutsch": "german",
    "português": "portuguese",
    "portugues": "portuguese",
    "creole": "haitian creole",
    "persian": "farsi",
    "filipino": "tagalog",
}

# Capitalized words that follow "this is" / "call me" / "I'm in" without being a name or a
# place; the capitalization rule alone lets these through at the start of a clause.
_PROPER_NOUN_DENY = (
    _wordset(
        """
    back later tomorrow today tonight asap sir madam ma'am mister miss ridiculous crazy insane
    unacceptable frustrating terrible awful great fine good urgent important calling regarding
    about customer support service help agent manager representative human person somebody
    someone anyone nobody everyone anybody god jesus christ hell please thanks thank okay ok
    yes no hello hi hey sorry again now here there trouble hurry pain love shock charge luck
    line queue
    """
    )
    | frozenset(_WEEKDAYS)
    | frozenset(_MONTHS)
    | frozenset(_LANGUAGES)
)

_US_STATES = _wordset(
    """
    alabama alaska arizona arkansas california colorado connecticut delaware florida georgia
    hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts
    michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma oregon
    pennsylvania tennessee texas utah vermont virginia washington wisconsin wyoming
    """
) | {
    "new hampshire",
    "new jersey",
    "new mexico",
    "new york",
    "north carolina",
    "north dakota",
    "rhode island",
    "south carolina",
    "south dakota",
    "west virginia",
}

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


def _normalize_text(text: str) -> str:
    # STT engines and platforms disagree on apostrophes; the rules below assume ASCII ones.
    return text.replace("\u2019", "'").replace("\u2018", "'").strip()


def _tokens(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return [w[:-2] if w.endswith("'s") else w for w in words]


def _content_words(text: str) -> list[str]:
    return [w for w in _tokens(text) if w not in STOPWORDS and w not in FILLERS]


# --------------------------------------------------------------------------------------------
# Extractive summary

_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "st.", "no.", "vs.", "etc.", "a.m.", "p.m.", "jr.", "sr."}
)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")

_GREETING_OR_FILLER = tuple(
    re.compile(p)
    for p in (
        r"\bthank(?:s| you) for (?:calling|contacting|reaching out|holding|waiting|your patience)",
        r"\bhow (?:can|may|could) i (?:help|assist)",
        r"\bwhat can i (?:do|help)",
        r"^(?:is there )?anything else\b",
        r"\bhave a (?:great|good|nice|wonderful|lovely) (?:day|one|evening|afternoon|weekend)",
        r"\b(?:let me|i'll|i will) (?:check|look|see|pull|take a look)\b(?!.*\d)",
        r"\b(?:one moment|just a moment|bear with me|hold on|please hold)\b",
        r"\b(?:can|could) you hear me\b",
        # A bare self-introduction ("Hi, this is Dana from Acme.") says nothing about the call.
        r"^(?:(?:hi|hello|hey|yes|yeah)[,!]?\s+)?(?:this is|my name is|my name's|i'm|i am)\s+"
        r"[\w'-]+(?:\s+[\w'-]+)?(?:\s+(?:from|with|at)\s+[\w' -]+)?[.!]?$",
    )
)

_REQUEST_CUES = re.compile(
    r"\?|\b(?:i need|i want|i'd like|i would like|can you|could you|would you|i'm calling|"
    r"i am calling|calling about|where is|where's|why|how do|how can i|help me|i have a problem|"
    r"problem with|issue with|trying to|wondering)\b"
)
_RESOLUTION_CUES = re.compile(
    r"\b(?:i've|i have|we've|we have|it was|it's been|it has been|has been|was|will be|"
    r"i'll|i will|we'll|done|updated|changed|scheduled|booked|confirmed|cancel(?:l)?ed|"
    r"refund(?:ed)?|sent|shipped|delivered|resolved|fixed|processed|credited|reset|arrive|arriving)\b"
)

# Request and resolution sentences are what a reader of the summary needs first; the boost
# is large enough to beat a merely wordy sentence but not one with twice the shared vocabulary.
_ROLE_CUE_BOOST = 1.5


@dataclass(frozen=True)
class _Sentence:
    index: int
    role: Role
    text: str
    content: tuple[str, ...]


def _split_sentences(text: str) -> list[str]:
    pieces = [p.strip() for p in _SENTENCE_BREAK.split(_normalize_text(text)) if p.strip()]
    sentences: list[str] = []
    for piece in pieces:
        # A split after "Dr." or "3 p.m." is not a sentence end; glue the piece back.
        if sentences and sentences[-1].split()[-1].lower() in _ABBREVIATIONS:
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def _is_greeting_or_filler(sentence: str, content: tuple[str, ...]) -> bool:
    if not content:
        return True
    lowered = sentence.lower()
    return any(p.search(lowered) for p in _GREETING_OR_FILLER)


def _sentences(turns: list[Turn]) -> list[_Sentence]:
    out: list[_Sentence] = []
    for turn in turns:
        for text in _split_sentences(turn.text):
            content = tuple(_content_words(text))
            if _is_greeting_or_filler(text, content):
                continue
            out.append(_Sentence(len(out), turn.role, text, content))
    return out


def _score(sentence: _Sentence, frequency: Counter[str]) -> float:
    # Sum of call-wide frequencies, damped by sqrt(length): a long sentence should not win
    # merely by being long, and a one-word sentence should not win by repeating a hot word.
    total = sum(frequency[w] for w in set(sentence.content))
    score = total / math.sqrt(len(sentence.content))
    lowered = sentence.text.lower()
    if sentence.role == "caller" and _REQUEST_CUES.search(lowered):
        score *= _ROLE_CUE_BOOST
    if sentence.role == "agent" and _RESOLUTION_CUES.search(lowered):
        score *= _ROLE_CUE_BOOST
    return score


def _best(candidates: list[_Sentence], scores: dict[int, float]) -> _Sentence | None:
    # Ties go to the earlier sentence so the choice never depends on iteration accidents.
    return min(candidates, key=lambda s: (-scores[s.index], s.index), default=None)


def _render(chosen: list[_Sentence]) -> str:
    parts: list[str] = []
    previous_role: Role | None = None
    for sentence in chosen:
        text = sentence.text if sentence.text[-1] in ".!?" else f"{sentence.text}."
        if sentence.role != previous_role:
            parts.append("Caller:" if sentence.role == "caller" else "Agent:")
            previous_role = sentence.role
        parts.append(text)
    return " ".join(parts)


def summarize_extractive(turns: list[Turn], max_sentences: int = 3) -> str:
    """Pick the call's most representative sentences, in their original order.

    Sentences are scored by how often their content words occur across the whole call.
    The caller's first substantive sentence (why they called) and the agent's best
    resolution-like sentence after it are always kept (when they exist); the remaining slots
    go to the highest scores.
    Greetings, pleasantries and hold fillers are never chosen.
    """
    if max_sentences < 1:
        raise ValueError("max_sentences must be at least 1")
    sentences = _sentences(turns)
    if not sentences:
        return ""
    frequency: Counter[str] = Counter(w for s in sentences for w in s.content)
    scores = {s.index: _score(s, frequency) for s in sentences}

    anchors: list[_Sentence] = []
    # On the phone the caller's first substantive sentence is almost always why they called.
    request = next((s for s in sentences if s.role == "caller" and s.content), None)
    if request is not None:
        anchors.append(request)
    after = request.index if request is not None else -1
    agent = [s for s in sentences if s.role == "agent"]
    resolution = _best([s for s in agent if s.index > after], scores) or _best(agent, scores)
    if resolution is not None:
        anchors.append(resolution)

    chosen = {s.index: s for s in anchors[:max_sentences]}
    for sentence in sorted(sentences, key=lambda s: (-scores[s.index], s.index)):
        if len(chosen) >= max_sentences:
            break
        chosen.setdefault(sentence.index, sentence)
    return _render([chosen[i] for i in sorted(chosen)])


# --------------------------------------------------------------------------------------------
# Rule-based facts

# O'Neil, McDonald, Mary-Ann; never a possessive ("Amazon's fault") or a fragment of a word.
_NAME_TOKEN = r"[A-Z](?:'[A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z]?[a-z]+)?(?![\w'-])"
_PLACE = rf"{_NAME_TOKEN}(?:\s+{_NAME_TOKEN}){{0,2}}"
_CHANNEL = (
    r"(?i:e-?mails?|texts?(?:\s+messages?)?|sms|messages?|phone(?:\s+calls?)?|calls?"
    r"|cell(?:\s+phone)?|mobile)"
)
_WEEKDAY = r"(?i:" + "|".join(_WEEKDAYS) + r")s?"
_MONTH = (
    r"(?i:" + "|".join(sorted((*_MONTHS, *_MONTH_ABBREVIATIONS), key=len, reverse=True)) + r")\.?"
)
_DATE = (
    rf"(?:(?i:next|this)\s+)?(?:{_WEEKDAY}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|(?i:tomorrow|today))"
)
_TIME = r"\d{1,2}(?::\d{2})?(?:\s*(?i:am|pm|a\.m\.|p\.m\.|o'clock))?"
_APPOINTMENT_WORD = (
    r"\b(?i:appointment|appt|booked|booking|scheduled|reservation|reserved|reschedule|visit)\b"
)
_LANGUAGE = (
    r"(?i:" + "|".join(sorted((*_LANGUAGES, *_LANGUAGE_ALIASES), key=len, reverse=True)) + r")\b"
)
_IDENTIFIER = (
    r"(?:(?i:number|no\.?|num|id|#)\s*)?(?:(?i:is)\s+)?[:#]?\s*(?P<v>[A-Za-z]{0,5}-?\d[\w-]*)"
)

_NEGATION_BEFORE = re.compile(
    r"\b(?:don't|dont|do not|never|not|no longer|won't|please don't)\s+(?:\w+\s+)?$"
)


def _proper_noun(text: str, max_tokens: int) -> str | None:
    tokens: list[str] = []
    for token in text.split()[:max_tokens]:
        lowered = token.lower()
        if lowered in STOPWORDS or lowered in _PROPER_NOUN_DENY or lowered.endswith("'s"):
            break
        tokens.append(token)
    return " ".join(tokens) or None


def _name(match: re.Match[str]) -> str | None:
    return _proper_noun(match["v"], max_tokens=2)


def _single_name(match: re.Match[str]) -> str | None:
    return _proper_noun(match["v"], max_tokens=1)


def _city(match: re.Match[str]) -> str | None:
    place = _proper_noun(match["v"], max_tokens=3)
    if place is None:
        return None
    tokens = place.split()
    # "Austin Texas" is the city Austin; keep a state only when it is all that was said.
    for cut in range(1, len(tokens)):
        if " ".join(tokens[cut:]).lower() in _US_STATES:
            tokens = tokens[:cut]
            break
    return " ".join(tokens)


def _channel(value: str) -> str | None:
    lowered = value.lower().strip()
    if lowered.startswith(("e-mail", "email")):
        return "email"
    if lowered.startswith(("text", "sms", "message", "messaging")):
        return "text"
    if lowered.startswith(("phone", "call", "cell", "mobile", "ring", "voice")):
        return "phone"
    return None


def _contact(match: re.Match[str]) -> str | None:
    return _channel(match["v"])


def _identifier(match: re.Match[str]) -> str | None:
    value = match["v"].strip("-_").upper()
    # "order 2 weeks ago" must not yield an order id: ids carry a digit and some length.
    if len(re.sub(r"[^A-Z0-9]", "", value)) < 3 or not re.search(r"\d", value):
        return None
    return value


def _language(match: re.Match[str]) -> str | None:
    lowered = match["v"].lower()
    return _LANGUAGE_ALIASES.get(lowered, lowered)


def _date_phrase(text: str) -> str:
    words: list[str] = []
    for word in re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", text).split():
        bare = word.lower().rstrip(".")
        if bare in _MONTH_ABBREVIATIONS:
            words.append(_MONTH_ABBREVIATIONS[bare].capitalize())
        elif bare in _MONTHS or bare.rstrip("s") in _WEEKDAYS:
            words.append(bare.capitalize())
        else:
            words.append(bare)
    return " ".join(words)


def _time_phrase(text: str) -> str:
    lowered = text.lower()
    if "o'clock" in lowered:
        return re.sub(r"\s+", " ", lowered)
    return re.sub(r"[\s.]", "", lowered)


def _appointment(match: re.Match[str]) -> str | None:
    sentence_start = max(match.string.rfind(c, 0, match.start()) for c in ".!?")
    if "cancel" in match.string[sentence_start + 1 : match.end()].lower():
        return None
    date = _date_phrase(match["date"])
    time = match.groupdict().get("time")
    return f"{date} at {_time_phrase(time)}" if time else date


_ALLERGY_DENY = frozenset({"severe", "bad", "mild", "serious", "food", "an", "my", "the", "no"})


def _allergy(match: re.Match[str]) -> str | None:
    value = re.sub(r"^(?:a|an|the|any)\s+", "", match["v"].strip().lower())
    if not value or value in _ALLERGY_DENY or value in STOPWORDS:
        return None
    return value


@dataclass(frozen=True)
class _Rule:
    key: str
    pattern: re.Pattern[str]
    value: Callable[[re.Match[str]], str | None]


def _rule(key: str, pattern: str, value: Callable[[re.Match[str]], str | None]) -> _Rule:
    return _Rule(key, re.compile(pattern), value)


# Patterns are case-sensitive on purpose: names and places must be capitalized in the
# transcript, which is what keeps "this is ridiculous" from becoming a name. The surrounding
# phrases are matched case-insensitively through scoped (?i:...) groups.
_RULES: tuple[_Rule, ...] = (
    _rule(
        "name",
        rf"\b(?i:my name is|my name's|name is)\s+(?P<v>{_NAME_TOKEN}(?:\s+{_NAME_TOKEN})?)",
        _name,
    ),
    _rule(
        "name",
        rf"(?:^|[.!?,;:]\s*|\b(?i:hi|hello|hey|yes|yeah|oh)\s+)(?i:this is)\s+"
        rf"(?P<v>{_NAME_TOKEN}(?:\s+{_NAME_TOKEN})?)",
        _name,
    ),
    _rule("name", rf"\b(?i:call me)\s+(?P<v>{_NAME_TOKEN})\b(?!['-])", _single_name),
    _rule(
        "contact_preference",
        rf"\b(?i:prefer|rather)\s+(?:(?i:(?:to )?(?:be|get|receive)|being|getting|receiving)\s+)?"
        rf"(?:(?i:contacted|reached|notified|updated)\s+)?(?:(?i:by|via|through|over|on)\s+)?"
        rf"(?:(?i:an?|the|my)\s+)?(?P<v>{_CHANNEL})\b",
        _contact,
    ),
    _rule(
        "contact_preference",
        r"\b(?i:prefer|rather)\s+(?:(?i:to\s+))?(?i:be\s+)(?P<v>(?i:called|phoned|emailed|texted|messaged))\b",
        _contact,
    ),
    _rule(
        "contact_preference",
        rf"\b(?i:contact|reach|notify|update|get in touch with|get back to)\s+(?i:me)\s+"
        rf"(?i:by|via|through|over|on|at)\s+(?:(?i:my|an?|the)\s+)?(?P<v>{_CHANNEL})\b",
        _contact,
    ),
    _rule(
        "contact_preference",
        r"\b(?P<v>(?i:e-?mail|text|message|sms|call|phone|ring))\s+(?i:me)"
        r"(?=\s*(?:[.,!?;]|$)|\s+(?i:instead|rather|please|from now on|going forward|only|"
        r"next time|in the future)\b)",
        _contact,
    ),
    _rule(
        "city",
        rf"\b(?i:i|we)(?:'m|'ve|\s+am|\s+have|\s+are|'re)?\s+"
        rf"(?:(?i:now|currently|just|recently|actually|still)\s+)?"
        rf"(?i:live|living|moved|relocated|based|located|staying)\s+(?i:in|to)\s+(?P<v>{_PLACE})",
        _city,
    ),
    _rule(
        "city",
        rf"\b(?i:i'm|i am|we're|we are)\s+(?:(?i:now|currently|actually|still)\s+)?(?i:in)\s+"
        rf"(?P<v>{_PLACE})",
        _city,
    ),
    _rule("order_id", rf"\b(?i:order)\b\s*{_IDENTIFIER}", _identifier),
    _rule("account_id", rf"\b(?i:account|acct)\b\s*{_IDENTIFIER}", _identifier),
    _rule(
        "language",
        rf"\b(?i:i)\s+(?:(?i:only|mostly|mainly|prefer to|would rather|'d rather)\s+)?"
        rf"(?i:speak)\s+(?P<v>{_LANGUAGE})",
        _language,
    ),
    _rule(
        "language", rf"\b(?i:in|en)\s+(?P<v>{_LANGUAGE})\s*,?\s*(?i:please|por favor)", _language
    ),
    _rule(
        "language",
        rf"\b(?i:do you speak|can you speak|switch to|speak in|talk in|prefer|hablo)\s+"
        rf"(?P<v>{_LANGUAGE})",
        _language,
    ),
    _rule(
        "appointment",
        rf"{_APPOINTMENT_WORD}[^.?!]{{0,40}}?\b(?i:on|for|to)\s+(?P<date>{_DATE})"
        rf"(?:\s*,?\s*(?i:at)\s+(?P<time>{_TIME}))?",
        _appointment,
    ),
    _rule(
        "appointment",
        rf"{_APPOINTMENT_WORD}[^.?!]{{0,40}}?\b(?i:at)\s+(?P<time>{_TIME})\s+(?i:on)\s+"
        rf"(?P<date>{_DATE})",
        _appointment,
    ),
    _rule(
        "allergy",
        r"\b(?i:allergic to|allergy to)\s+(?P<v>[A-Za-z][A-Za-z -]{0,40}?)"
        r"(?=\s*(?:[.,!?;]|$)|\s+(?i:but|so|because|which|that)\b)",
        _allergy,
    ),
    _rule("allergy", r"\b(?P<v>[A-Za-z]+)\s+(?i:allergy)\b", _allergy),
)


def _negated(text: str, start: int) -> bool:
    return _NEGATION_BEFORE.search(text[max(0, start - 24) : start].lower()) is not None


def normalize_fact_value(key: str, value: str) -> str | None:
    """The stored form of a fact's value, or None when the value is unusable for that key.

    Shared by the rule-based and LLM paths so both store e.g. ``contact_preference=text``.
    """
    value = " ".join(value.split())
    if key not in FACT_KEYS or not value:
        return None
    if key == "contact_preference":
        return _channel(value)
    if key == "language":
        lowered = value.lower()
        return _LANGUAGE_ALIASES.get(lowered, lowered)
    if key in ("name", "city"):
        return " ".join(w[:1].upper() + w[1:] for w in value.split())
    if key in ("order_id", "account_id"):
        return value.lstrip("#").upper()
    if key == "address":
        return value.strip(" ,.")
    if key == "allergy":
        return value.lower()
    return value


def extract_facts_rules(turns: list[Turn]) -> list[ExtractedFact]:
    """Facts the caller stated about themselves, one per key, in ``FACT_KEYS`` order.

    When the caller states a key more than once, the latest statement wins ("I prefer email...
    actually, text me instead" yields ``text``). Negated statements ("don't text me") are
    ignored.
    """
    found: list[tuple[int, int, int, str, str]] = []
    for turn_index, turn in enumerate(turns):
        if turn.role != "caller":
            continue
        text = _normalize_text(turn.text)
        for rule_index, rule in enumerate(_RULES):
            for match in rule.pattern.finditer(text):
                start = match.start("v") if "v" in match.groupdict() else match.start()
                if _negated(text, start):
                    continue
                raw = rule.value(match)
                value = normalize_fact_value(rule.key, raw) if raw is not None else None
                if value is not None:
                    found.append((turn_index, match.start(), rule_index, rule.key, value))
        # Only present when the agent's policy keeps addresses; otherwise already [ADDRESS].
        for address in street_addresses(text):
            found.append((turn_index, text.find(address), len(_RULES), "address", address))
    latest: dict[str, str] = {}
    for _, _, _, key, value in sorted(found):
        latest[key] = value
    return [ExtractedFact(key=k, value=latest[k]) for k in FACT_KEYS if k in latest]


# What redaction leaves of a value that was nothing but PII: placeholders and masked numbers.
_ONLY_REDACTED = re.compile(r"(?:\[[A-Z_]+\]|\+\d{1,3}•+\d{0,4}|[\s,.;:/-])*")


def redact_analysis(analysis: CallAnalysis, policy: PiiPolicy) -> CallAnalysis:
    """What memory may keep of an analysis under the agent's PII policy.

    The transcript the analysis read was redacted already, but an LLM may reformat what it
    read ("March 4th, 1982" from spoken words) and a policy that keeps addresses leaves them in
    the transcript. So the summary is redacted with the default policy (free text never keeps
    an address), the ``address`` fact is kept only when the policy keeps addresses, every other
    fact value is redacted, and a fact left with nothing but placeholders is dropped.
    """
    facts: list[ExtractedFact] = []
    for fact in analysis.facts:
        if fact.key == "address" and not policy.keeps_addresses:
            continue
        value = redact(fact.value, policy if fact.key == "address" else PiiPolicy())
        if not _ONLY_REDACTED.fullmatch(value):
            facts.append(ExtractedFact(key=fact.key, value=value))
    return CallAnalysis(summary=redact(analysis.summary), facts=facts, method=analysis.method)


def analyze_call_rules(turns: list[Turn]) -> CallAnalysis:
    """The complete non-LLM analysis: extractive summary plus rule-based facts."""
    return CallAnalysis(
        summary=summarize_extractive(turns),
        facts=extract_facts_rules(turns),
        method=METHOD_RULES,
    )
