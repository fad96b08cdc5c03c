"""The scripted model's answer to a structured-output request (``response_format`` of type
``json_schema`` or ``json_object``), decided from the request alone.

Evaluation frameworks (deepeval's metrics and its conversation simulator) send one prompt and a
JSON schema per step. The fake fills that schema with simple deterministic rules over what the
prompt contains; it does not judge quality, so a score it produces tests the plumbing (requests,
schema, parsing, recording), never how good a conversation was.

The conversation is every ``{"role": "user" | "assistant", "content": ...}`` object in the prompt
(JSON or Python-literal), except those in a block labelled as an example (the nearest label line
above it, a line ending in ``:``, mentions "example"). The rules, by the schema's types:

* boolean: true when the conversation's last assistant turn reports something done (confirmed,
  booked, ...) and shares a word with what the user said (a goal met: the conversation may end);
* a string enum with ``yes``: ``yes`` when the assistant turns share a word with the user turns,
  else ``no``; any other enum: its first option;
* a string named like ``reason``: a sentence counting those shared words; any other string: the
  next clause of the prompt's ``Scenario: "..."`` that the user has not said yet (one clause per
  user turn, as a simulated caller would), else the last user turn;
* a number: the share of user turns the assistant's words touch, scaled to the schema's bounds
  (0-10 when it has none);
* an array of strings: the distinct user turns (at most three); an array of objects: empty;
* an object with free keys: ``{"Latest user message": <last user turn>}``;
* a nullable field: its non-null form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fakes.llm_policy import DONE_RE, Reply, text_of, words

__all__ = ["is_structured", "structured_reply"]

_TURN = re.compile(r"\{[^{}]*\}", re.S)
_ROLE = re.compile(r"""["']role["']\s*:\s*["'](user|assistant)["']""")
_CONTENT = re.compile(
    r"""["']content["']\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""", re.S
)
_LABEL = re.compile(r"^\s*[A-Za-z][\w \-()/]*:\s*$", re.M)
_SCENARIO = re.compile(r'^\s*Scenario:\s*"(.*)"\s*$', re.M)


def is_structured(body: Mapping[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, Mapping) and fmt.get("type") in ("json_schema", "json_object")


@dataclass(frozen=True)
class _Conversation:
    user: list[str]
    assistant: list[str]
    last_assistant: str
    scenario: str

    @property
    def shared(self) -> set[str]:
        return words(" ".join(self.user)) & words(" ".join(self.assistant))


def _unescape(text: str) -> str:
    try:
        value = json.loads(f'"{text}"')
        return value if isinstance(value, str) else text
    except ValueError:
        return text.replace("\\'", "'")


def _conversation(prompt: str) -> _Conversation:
    labels = [(m.start(), m.group(0)) for m in _LABEL.finditer(prompt)]
    user: list[str] = []
    assistant: list[str] = []
    last_assistant = ""
    for m in _TURN.finditer(prompt):
        role, content = _ROLE.search(m.group(0)), _CONTENT.search(m.group(0))
        if role is None or content is None:
            continue
        label = next((text for pos, text in reversed(labels) if pos < m.start()), "")
        if "example" in label.lower():
            continue
        said = _unescape(content.group(1) if content.group(1) is not None else content.group(2))
        if role.group(1) == "user":
            user.append(said)
        else:
            assistant.append(said)
            last_assistant = said
    scenarios = [
        s.group(1) for s in _SCENARIO.finditer(prompt) if "example" not in s.group(0).lower()
    ]
    return _Conversation(user, assistant, last_assistant, scenarios[-1] if scenarios else "")


def _resolve(schema: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(schema, Mapping) and "$ref" in schema:
        return _resolve(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), defs)
    return schema


def _next_clause(convo: _Conversation) -> str:
    clauses = [c.strip() for c in re.split(r",|;|\band then\b", convo.scenario) if c.strip()]
    if not clauses:
        return convo.user[-1] if convo.user else "Hello."
    clause = clauses[min(len(convo.user), len(clauses) - 1)]
    return clause[0].upper() + clause[1:].rstrip(".") + "."


def _fill(name: str, schema: Any, defs: Mapping[str, Any], convo: _Conversation) -> Any:
    schema = _resolve(schema, defs)
    if not isinstance(schema, Mapping):
        return None
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(o, defs) for o in schema[key]]
            usable = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            return _fill(name, usable[0], defs, convo) if usable else None
    kind = schema.get("type")
    shared = convo.shared
    if "enum" in schema:
        options = list(schema["enum"])
        if "yes" in options and "no" in options:
            return "yes" if shared else "no"
        return options[0] if options else None
    if kind == "boolean":
        done = bool(DONE_RE.search(convo.last_assistant))
        return done and bool(words(convo.last_assistant) & words(" ".join(convo.user)))
    if kind in ("number", "integer"):
        low, high = float(schema.get("minimum", 0)), float(schema.get("maximum", 10))
        touched = sum(1 for u in convo.user if words(u) & words(" ".join(convo.assistant)))
        share = touched / len(convo.user) if convo.user else 0.0
        value = low + share * (high - low)
        return round(value) if kind == "integer" else round(value, 2)
    if kind == "string":
        if "reason" in name.lower():
            return f"The assistant's turns share {len(shared)} word(s) with the user's" + (
                f" ({', '.join(sorted(shared)[:5])})." if shared else "."
            )
        return _next_clause(convo)
    if kind == "array":
        items = _resolve(schema.get("items", {}), defs)
        if isinstance(items, Mapping) and items.get("type") == "string":
            return list(dict.fromkeys(convo.user))[:3]
        return []
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        if isinstance(props, Mapping) and props:
            return {k: _fill(k, v, defs, convo) for k, v in props.items()}
        return {"Latest user message": convo.user[-1]} if convo.user else {}
    return None


def structured_reply(body: Mapping[str, Any]) -> Reply:
    """A JSON object that fits the request's schema (``json_object``: a reason only)."""
    messages = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    prompt = "\n".join(text_of(m.get("content")) for m in messages)
    convo = _conversation(prompt)
    fmt = body.get("response_format") or {}
    spec = fmt.get("json_schema") if isinstance(fmt, Mapping) else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        schema = {"type": "object", "properties": {"reason": {"type": "string"}}}
    value = _fill("", schema, schema.get("$defs") or {}, convo)
    return Reply(content=json.dumps(value), rule="structured")
