"""The scripted agent model behind ``fakes/llm.py``: a deterministic reply that follows only from
the chat-completions request it is sent (system prompt, conversation, offered tools), never from
who asked or which prompt version produced the request. A test that passes against it passes
because the request carried what the behaviour needs.

Rules, first match wins:

1. The last message(s) are tool results: speak an answer built from them ("Your booking is
   confirmed: date: Tuesday, time: 3pm." for a booking tool, the most relevant sentence for a
   search tool, "I'm sorry, I couldn't complete that: ..." for an error).
2. The caller's last turn matches an offered tool that is not forbidden (word overlap with the
   tool's name, weight 2, and description, weight 1, over a few synonym groups: book / schedule
   / reserve / appointment; remember / last time / previous -> memory; at least 2 points): call it,
   with arguments extracted from the utterance by the tool's JSON schema (dates, times, numbers,
   names, phones, emails, ids, enums, free-text queries; required arguments always filled).
3. A sentence of the system prompt or of an earlier tool result shares words with the caller's
   turn: answer with that sentence, verbatim (so a wrong fact in the prompt is a wrong answer).
4. The caller asked a question and a knowledge/FAQ tool is offered: call it with the question.
5. Otherwise a generic helpful sentence.

Two kinds of request are not the agent's and are answered before these rules, still only from
the request:

* A judge request (the system prompt asks to ``Return JSON: {"score"...``): a fenced JSON verdict
  whose score is the share of the criteria's content words that the agent's turns of the
  transcript contain (so a transcript that does what the rubric says scores higher).
* A caller request (the system prompt starts ``You are playing the caller``): the next clause
  of the caller's goal, one per turn, until the agent's last turn confirms something done
  (confirmed, booked, scheduled...) and shares a word with the goal: then ``[DONE]``.

Plain-English instructions in the system prompt are obeyed: "Never call <tool>" / "Do not use
<tool>" (or "Never call tools"), "Do not <verb>" (forbids tools whose name has that verb, e.g.
"Do not book appointments"), 'Always greet with "..."' (first assistant turn) and
'Always end with "..."'. Two degradations, for drift tests: ``verbosity`` stretches (or cuts)
every spoken answer to that multiple of its word count, and ``grounding_slip_rate`` alters each
number in a spoken answer with that probability, from a generator seeded by ``seed`` and the
request itself (the same request always gets the same answer).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GENERIC_REPLY = "I can help with that. Could you tell me a little more about what you need?"
OPENING_REPLY = "Hello! How can I help you today?"
NOT_FOUND_REPLY = "I'm sorry, I couldn't find anything about that."
FILLER = (
    "To be clear, that is the information I have on file for you right now. "
    "Please let me know if you would like me to repeat any part of it. "
    "I am also happy to help with anything else you might need today."
)

_STOPWORDS = """a about after all also am an and any are as at be been but by can could did do does
    doing don't for from get got had has have hello hey hi how i i'd i'll i'm i've if in into is
    it it's its just let like me my need of on or our please so some tell than thank thanks that
    the their them then there these they this those to up us want was we were what when where
    which who why will with would yes you your you're caller call calls tool tools function
    use used"""
STOPWORDS = frozenset(_STOPWORDS.split())
# Stems mapped onto one concept, so "schedule a visit" meets ``book_appointment``.
CONCEPTS = {
    "reserv": "book",
    "reservation": "book",
    "schedul": "book",
    "remember": "memory",
    "recall": "memory",
    "previou": "memory",
    "previous": "memory",
    "earlier": "memory",
    "memori": "memory",
    "knowledg": "knowledge",
    "faq": "knowledge",
    "question": "knowledge",
    "answer": "knowledge",
    "cancell": "cancel",
}
PHRASES = ((re.compile(r"\blast (?:time|call|week's call)\b", re.I), " memory "),)
QUESTION_START = re.compile(
    r"^\s*(?:what|when|where|who|whom|which|why|how|do|does|did|is|are|can|could|will|would"
    r"|should|may)\b",
    re.I,
)

MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
WEEKDAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
DATE_RE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}\b"
    rf"|\b{MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS}\b"
    r"|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b"
    rf"|\b(?:(?:next|this)\s+)?{WEEKDAYS}\b"
    r"|\b(?:today|tomorrow|tonight)\b",
    re.I,
)
TIME_RE = re.compile(
    r"\b\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\b\d{1,2}:\d{2}\b|\b(?:noon|midnight)\b",
    re.I,
)
PHONE_RE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
NAME_RE = re.compile(
    r"(?i:\b(?:my name is|my name's|this is|i am|i'm|name is)\s+)"
    r"([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
)
ID_RE = re.compile(r"\b(?:[A-Za-z]+-?)?\d[\w-]*\b")
_NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve"
NUMBER_WORDS = {w: i for i, w in enumerate(_NUMBERS.split())}
NUMBER_RE = re.compile(r"\b(?:\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + r")\b", re.I)
FREE_TEXT_KEYS = ("query", "question", "text", "message", "topic", "request", "reason", "search")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

FORBID_CALL_RE = re.compile(
    r"\b(?:never|do not|don't)\s+(?:call|use|invoke)\s+(?:the\s+|any\s+)?`?([\w-]+)`?", re.I
)
FORBID_VERB_RE = re.compile(r"(?:^|[.!\n]\s*|-\s+)(?:never|do not|don't)\s+([a-z]+)", re.I)
QUOTED = r"[\"“]([^\"”\n]+)[\"”]"
GREET_RE = re.compile(
    rf"\balways\s+(?:greet|open|start)\b[^\"“\n]*?\bwith\s+(?:{QUOTED}|([^\n]+))", re.I
)
END_RE = re.compile(
    rf"\balways\s+(?:end|close|finish)\b[^\"“\n]*?\bwith\s+(?:{QUOTED}|([^\n]+))", re.I
)
INSTRUCTION_START = re.compile(r"^\s*(?:never|always|do not|don't|you)\b", re.I)


@dataclass(frozen=True)
class FakeToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True)
class Reply:
    """What the model says: ``content`` or ``tool_calls``; ``rule`` names the rule that fired
    (``tool_result``, ``tool_call``, ``fact``, ``knowledge_call``, ``generic``, ``opening``,
    ``judge``, ``caller``)."""

    content: str | None
    tool_calls: tuple[FakeToolCall, ...] = ()
    rule: str = "generic"


@dataclass(frozen=True)
class Degradation:
    verbosity: float = 1.0
    grounding_slip_rate: float = 0.0
    seed: int = 0


@dataclass
class Instructions:
    forbid_all: bool = False
    forbidden_tools: set[str] = field(default_factory=set)
    forbidden_verbs: set[str] = field(default_factory=set)
    greeting: str | None = None
    closing: str | None = None

    def allows(self, tool_name: str) -> bool:
        if self.forbid_all or tool_name.lower() in self.forbidden_tools:
            return False
        return not (_name_tokens(tool_name) & self.forbidden_verbs)


# --- text helpers ----------------------------------------------------------------------------


def text_of(content: Any) -> str:
    """A message's content as text (a string, or a list of ``{"type": "text"}`` parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p
        )
    return ""


def stem(word: str) -> str:
    w = word.lower().strip("'")
    if w.endswith("'s"):
        w = w[:-2]
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and not w.endswith("ss") and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return CONCEPTS.get(w, w)


def words(text: str) -> set[str]:
    """Content words of ``text``, stemmed and mapped onto concepts."""
    for pattern, replacement in PHRASES:
        text = pattern.sub(replacement, text)
    return {
        stem(w)
        for w in re.findall(r"[a-z0-9][a-z0-9']*", text.lower())
        if w not in STOPWORDS and len(w) > 1
    }


def _name_tokens(name: str) -> set[str]:
    return {stem(p) for p in re.split(r"[_\-\s.]+|(?<=[a-z])(?=[A-Z])", name) if p}


def is_question(text: str) -> bool:
    return text.rstrip().endswith("?") or bool(QUESTION_START.match(text))


def sentences(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*• ").strip()
        out.extend(s.strip() for s in SENTENCE_END.split(line) if s.strip())
    return out


def read_instructions(system: str) -> Instructions:
    found = Instructions()
    for m in FORBID_CALL_RE.finditer(system):
        target = m.group(1).lower()
        if target in ("tools", "tool", "functions", "any"):
            found.forbid_all = True
        else:
            found.forbidden_tools.add(target)
    for m in FORBID_VERB_RE.finditer(system):
        verb = m.group(1).lower()
        if verb not in ("call", "use", "invoke"):
            found.forbidden_verbs.add(stem(verb))
    if greet := GREET_RE.search(system):
        greeting = (greet.group(1) or greet.group(2)).strip()
        found.greeting = greeting if greeting[-1] in ".!?" else greeting + "."
    if end := END_RE.search(system):
        found.closing = (end.group(1) or end.group(2)).strip()
    return found


# --- arguments from the utterance ------------------------------------------------------------


def _strip_spans(text: str, *patterns: re.Pattern[str]) -> str:
    for p in patterns:
        text = p.sub(" ", text)
    return text


def _number(text: str) -> int | float | None:
    m = NUMBER_RE.search(_strip_spans(text, DATE_RE, TIME_RE, PHONE_RE, EMAIL_RE))
    if not m:
        return None
    token = m.group(0).lower()
    if token in NUMBER_WORDS:
        return NUMBER_WORDS[token]
    return float(token) if "." in token else int(token)


def _extract(name: str, prop: Mapping[str, Any], utterance: str) -> Any:
    key = name.lower()
    kind = prop.get("type", "string")
    fmt = str(prop.get("format", ""))
    if isinstance(prop.get("enum"), list):
        for option in prop["enum"]:
            if re.search(rf"\b{re.escape(str(option))}\b", utterance, re.I):
                return option
        return None
    if kind in ("integer", "number"):
        n = _number(utterance)
        if n is None:
            return None
        return int(n) if kind == "integer" else n
    if kind != "string":
        return None
    date = DATE_RE.search(utterance)
    time_ = TIME_RE.search(utterance)
    if fmt == "date-time" or key in ("when", "datetime", "date_time", "slot", "start"):
        parts = [m.group(0) for m in (date, time_) if m]
        return " ".join(parts) or None
    if fmt == "date" or "date" in key or key.endswith("day"):
        return date.group(0) if date else None
    if fmt == "time" or "time" in key or "hour" in key:
        return time_.group(0) if time_ else None
    if fmt == "email" or "email" in key:
        m = EMAIL_RE.search(utterance)
        return m.group(0) if m else None
    if "phone" in key or ("number" in key and "phone" in str(prop.get("description", "")).lower()):
        m = PHONE_RE.search(utterance)
        return m.group(0).strip() if m else None
    if "name" in key:
        m = NAME_RE.search(utterance)
        return m.group(1) if m else None
    if key == "id" or key.endswith("_id") or key.endswith("number"):
        rest = _strip_spans(utterance, DATE_RE, TIME_RE)
        m = ID_RE.search(rest)
        return m.group(0) if m else None
    if any(k in key for k in FREE_TEXT_KEYS):
        return utterance.strip()
    return None


def _filler(prop: Mapping[str, Any]) -> Any:
    if "default" in prop:
        return prop["default"]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(
        str(prop.get("type", "string")), "unknown"
    )


def arguments_for(schema: Mapping[str, Any], utterance: str) -> dict[str, Any]:
    """Arguments for a tool from what the caller said: every property the utterance gives,
    and every required one (from its default, first enum value or a placeholder otherwise)."""
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    args: dict[str, Any] = {}
    for name, prop in props.items():
        prop = prop if isinstance(prop, Mapping) else {}
        value = _extract(name, prop, utterance)
        if value is None and name in required:
            value = _filler(prop)
        if value is not None:
            args[name] = value
    return args


# --- the policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]

    @property
    def is_knowledge(self) -> bool:
        return "knowledge" in _name_tokens(self.name) | words(self.description)


def _tools(body: Mapping[str, Any]) -> list[_Tool]:
    tools: list[_Tool] = []
    for t in body.get("tools") or ():
        fn = t.get("function") if isinstance(t, Mapping) else None
        if isinstance(fn, Mapping) and fn.get("name"):
            tools.append(
                _Tool(str(fn["name"]), str(fn.get("description") or ""), fn.get("parameters") or {})
            )
    return tools


def _call_id(messages: list[Any], name: str) -> str:
    digest = hashlib.sha256(json.dumps([messages, name], sort_keys=True, default=str).encode())
    return "call_" + digest.hexdigest()[:24]


def _flatten(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _flatten(v)
    elif isinstance(value, list):
        for v in value:
            yield from _flatten(v)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _best_sentence(question: str, candidates: list[str]) -> str | None:
    """The candidate sharing the most (rarest) words with the question, if it shares enough."""
    asked = words(question) - {"knowledge", "memory"}
    if not asked:
        return None
    bags = [words(c) for c in candidates]
    df = Counter(w for bag in bags for w in bag)
    need = 1 if len(asked) <= 2 else 2
    best: tuple[float, int] | None = None
    for i, bag in enumerate(bags):
        shared = asked & bag
        if len(shared) < need:
            continue
        score = sum(1 / df[w] for w in shared)
        if best is None or score > best[0]:
            best = (score, i)
    return candidates[best[1]] if best else None


def _fields(value: Mapping[str, Any]) -> str:
    parts = [
        f"{str(k).replace('_', ' ')}: {v}"
        for k, v in value.items()
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]
    return ", ".join(parts)


def _answer_tool_result(tool_name: str, content: str, question: str) -> str:
    value = _parse_json(content)
    if isinstance(value, Mapping):
        error = value.get("error") or (value.get("message") if value.get("ok") is False else None)
        if error:
            return f"I'm sorry, I couldn't complete that: {error}."
    tokens = _name_tokens(tool_name)
    if tokens & {"book", "appointment"} and isinstance(value, Mapping):
        return f"Your booking is confirmed: {_fields(value)}."
    candidates = [s for text in _flatten(value) for s in sentences(text)]
    if best := _best_sentence(question, candidates):
        return best
    if tokens & {"search", "knowledge", "memory", "lookup", "find"} or not candidates:
        return NOT_FOUND_REPLY
    if isinstance(value, Mapping) and _fields(value):
        return f"Here is what I found: {_fields(value)}."
    return candidates[0]


def _degrade(text: str, how: Degradation, request_digest: str) -> str:
    if how.verbosity != 1.0 and text:
        tokens = text.split()
        target = max(1, round(len(tokens) * how.verbosity))
        if target > len(tokens):
            filler = FILLER.split()
            tokens += [filler[i % len(filler)] for i in range(target - len(tokens))]
        tokens = tokens[:target]
        text = " ".join(tokens).rstrip(",;:")
        if text[-1] not in ".!?":
            text += "."
    if how.grounding_slip_rate > 0:
        counter = iter(range(1_000_000))

        def slip(m: re.Match[str]) -> str:
            rng = random.Random(f"{how.seed}:{request_digest}:{next(counter)}")
            if rng.random() >= how.grounding_slip_rate:
                return m.group(0)
            return str(int(m.group(0)) + rng.randint(1, 9))

        text = re.sub(r"\d+", slip, text)
    return text


JUDGE_MARKER = 'Return JSON: {"score"'
CALLER_MARKER = "You are playing the caller"
STOP_TOKEN = "[DONE]"
CRITERIA_RE = re.compile(r"^Criteria:\s*(.+)$", re.M)
GOAL_RE = re.compile(r"^Your goal:\s*(.+)$", re.M)
DONE_RE = re.compile(
    r"\b(?:confirmed|booked|scheduled|reserved|cancell?ed|completed|all set|done)\b", re.I
)
# Words every rubric uses about the conversation itself, not what a good one contains.
JUDGE_STOPWORDS = frozenset({"agent", "conversation", "throughout", "every", "each"})


def judge_reply(system: str, user_turns: list[str]) -> Reply:
    """A verdict from the overlap of the criteria with what the agent said."""
    found = CRITERIA_RE.search(system)
    criteria = words(found.group(1) if found else "") - JUDGE_STOPWORDS
    transcript = "\n".join(user_turns)
    agent = " ".join(
        line.split(":", 1)[1] for line in transcript.splitlines() if line.startswith("agent:")
    )
    shared = sorted(criteria & words(agent))
    score = round(len(shared) / len(criteria), 2) if criteria else 0.0
    reason = f"the agent's turns cover {len(shared)} of {len(criteria)} points of the criteria" + (
        f" ({', '.join(shared)})" if shared else ""
    )
    verdict = json.dumps({"score": score, "reason": reason})
    return Reply(content=f"```json\n{verdict}\n```", rule="judge")


def caller_reply(system: str, messages: list[Mapping[str, Any]]) -> Reply:
    """The simulated caller's next line towards its goal."""
    found = GOAL_RE.search(system)
    goal = found.group(1).strip().rstrip(".") if found else ""
    said = [text_of(m.get("content")) for m in messages if m.get("role") == "assistant"]
    heard = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    last = heard[-1] if heard and messages[-1].get("role") == "user" else ""
    if said and DONE_RE.search(last) and words(last) & words(goal):
        return Reply(content=STOP_TOKEN, rule="caller")
    clauses = [c.strip() for c in re.split(r",|;|\band then\b", goal) if c.strip()] or [goal]
    if not said:
        line = f"Hi, I'd like to {clauses[0]}."
    elif len(said) < len(clauses):
        clause = clauses[len(said)]
        line = clause[0].upper() + clause[1:] + "."
    else:
        line = f"I'd still like to {clauses[0]}."
    return Reply(content=line, rule="caller")


def reply_to(body: Mapping[str, Any], degradation: Degradation | None = None) -> Reply:
    """The scripted model's answer to one chat-completions request body."""
    how = degradation or Degradation()
    messages: list[Any] = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True, default=str).encode()).hexdigest()
    system = "\n".join(text_of(m.get("content")) for m in messages if m.get("role") == "system")
    rules = read_instructions(system)
    first_turn = not any(m.get("role") == "assistant" for m in messages)
    user_turns = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    utterance = user_turns[-1] if user_turns else ""
    if JUDGE_MARKER in system:
        return judge_reply(system, user_turns)
    if system.lstrip().startswith(CALLER_MARKER):
        return caller_reply(system, messages)

    def speak(text: str, rule: str) -> Reply:
        text = _degrade(text, how, digest)
        if first_turn and rules.greeting:
            text = f"{rules.greeting} {text}" if rule != "opening" else rules.greeting
        if rules.closing and not text.endswith(rules.closing):
            text = f"{text} {rules.closing}"
        return Reply(content=text, rule=rule)

    # 1. Tool results: answer from them.
    trailing: list[Mapping[str, Any]] = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        trailing.insert(0, m)
    if trailing:
        names = {
            str(c.get("id")): str((c.get("function") or {}).get("name", ""))
            for m in messages
            if m.get("role") == "assistant"
            for c in m.get("tool_calls") or ()
            if isinstance(c, Mapping)
        }
        answers = [
            _answer_tool_result(
                names.get(str(m.get("tool_call_id")), ""), text_of(m.get("content")), utterance
            )
            for m in trailing
        ]
        return speak(" ".join(dict.fromkeys(answers)), "tool_result")

    if not utterance.strip():
        return speak(OPENING_REPLY, "opening")

    # 2. A tool the caller's words ask for.
    choice = body.get("tool_choice")
    offered = [] if choice == "none" else [t for t in _tools(body) if rules.allows(t.name)]
    if isinstance(choice, Mapping):
        forced = str((choice.get("function") or {}).get("name", ""))
        offered = [t for t in offered if t.name == forced]

    def call(tool: _Tool, rule: str) -> Reply:
        args = arguments_for(tool.parameters, utterance)
        tool_call = FakeToolCall(
            id=_call_id(messages, tool.name),
            name=tool.name,
            arguments=json.dumps(args, separators=(",", ":")),
        )
        return Reply(content=None, tool_calls=(tool_call,), rule=rule)

    said = words(utterance) - {"knowledge"}
    scored = [
        (2 * len(said & _name_tokens(t.name)) + len(said & words(t.description)), i, t)
        for i, t in enumerate(offered)
    ]
    scored.sort(key=lambda s: (-s[0], s[1]))
    if scored and (scored[0][0] >= 2 or choice == "required" or isinstance(choice, Mapping)):
        return call(scored[0][2], "tool_call")

    # 3. A fact in the prompt or in earlier tool results.
    context = [s for s in sentences(system) if not INSTRUCTION_START.match(s)]
    for m in messages:
        if m.get("role") == "tool":
            value = _parse_json(text_of(m.get("content")))
            context.extend(s for text in _flatten(value) for s in sentences(text))
    if fact := _best_sentence(utterance, context):
        return speak(fact, "fact")

    # 4. A question for the knowledge tool.
    if is_question(utterance):
        for t in offered:
            if t.is_knowledge:
                return call(t, "knowledge_call")

    return speak(GENERIC_REPLY, "generic")
