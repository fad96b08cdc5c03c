"""Caller personas: who is calling, as instructions for a simulated caller and as deterministic
rewrites of a scenario's scripted caller lines.

A persona file (YAML)::

    name: interrupter
    description: >
      You cut the agent off mid-sentence and often stop your own sentences half way.
    transforms:
      - kind: truncate
        rate: 0.7          # share of turns cut
        keep: [0.3, 0.7]   # share of the words kept

The description is what a simulated caller is told to be. The transforms rewrite scripted
turns, in order; each is deterministic for (persona, seed, turn number, text). Kinds:

* ``truncate``: with probability ``rate``, keep only the first ``keep`` share of the words;
* ``stt_noise``: the speech-to-text noise model (:func:`evals.noise.corrupt`) at ``wer``;
* ``fillers``: before each word, with probability ``rate``, one of ``phrases`` ("um", "well");
* ``repeat``: each word, with probability ``rate``, said twice (or the two words from it);
* ``prepend`` / ``append``: with probability ``rate``, one of ``phrases`` before / after the
  turn (frustration cues, asides, requests to repeat);
* ``drop_words``: each of ``words`` dropped with probability ``rate`` (articles, for a
  non-native speaker);
* ``replace_words``: each key of ``replace`` (words or phrases, any case) replaced by its value
  with probability ``rate``.

Built-in personas live in ``evals/personas/*.yaml``: angry, confused, elderly_slow,
interrupter, off_topic, noisy_speech, non_native. A suite may add its own (or override one) in
its ``personas/`` folder.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evals.files import Problem, SuiteError, load_yaml, problems_from
from evals.noise import corrupt

__all__ = [
    "BUILTIN_DIR",
    "Persona",
    "PersonaUse",
    "Transform",
    "builtin_personas",
    "load_persona_file",
    "load_personas",
]

BUILTIN_DIR = Path(__file__).resolve().parent / "personas"
"""The default personas shipped with Backline."""

TransformKind = Literal[
    "truncate", "stt_noise", "fillers", "repeat", "prepend", "append", "drop_words",
    "replace_words",
]  # fmt: skip

_PARAMS: dict[str, set[str]] = {
    "truncate": {"rate", "keep"},
    "stt_noise": {"wer"},
    "fillers": {"rate", "phrases"},
    "repeat": {"rate"},
    "prepend": {"rate", "phrases"},
    "append": {"rate", "phrases"},
    "drop_words": {"rate", "words"},
    "replace_words": {"rate", "replace"},
}
_REQUIRED: dict[str, set[str]] = {
    "stt_noise": {"wer"},
    "fillers": {"phrases"},
    "prepend": {"phrases"},
    "append": {"phrases"},
    "drop_words": {"words"},
    "replace_words": {"replace"},
}


class Transform(BaseModel):
    """One deterministic rewrite of a scripted caller turn (see the module doc for kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: TransformKind = Field(description="what the rewrite does, e.g. truncate")
    rate: float = Field(
        1.0, ge=0.0, le=1.0, description="probability per turn (per word for word-level kinds)"
    )
    wer: float | None = Field(None, ge=0.0, le=1.0, description="word error rate, e.g. 0.15")
    keep: tuple[float, float] = Field(
        (0.3, 0.7), description="share of the words a truncated turn keeps: [low, high]"
    )
    phrases: tuple[str, ...] = Field((), description="phrases to insert, one picked each time")
    words: tuple[str, ...] = Field((), description="words to drop")
    replace: dict[str, str] = Field({}, description="word or phrase: its replacement")

    @model_validator(mode="after")
    def _params_fit_kind(self) -> Transform:
        given = self.model_fields_set - {"kind"}
        unused = sorted(given - _PARAMS[self.kind])
        if unused:
            raise ValueError(
                f"{', '.join(unused)} has no effect on kind {self.kind}; "
                f"it takes: {', '.join(sorted(_PARAMS[self.kind]))}"
            )
        missing = sorted(_REQUIRED.get(self.kind, set()) - given)
        if missing:
            raise ValueError(f"kind {self.kind} needs {', '.join(missing)}")
        low, high = self.keep
        if not 0.0 < low <= high <= 1.0:
            raise ValueError("keep is [low, high] with 0 < low <= high <= 1, e.g. [0.3, 0.7]")
        return self

    def apply(self, text: str, rng: random.Random) -> str:
        """The turn after this rewrite (``rng`` decides every random choice)."""
        words = text.split()
        if not words:
            return text
        if self.kind == "truncate":
            if rng.random() >= self.rate:
                return text
            share = rng.uniform(*self.keep)
            return " ".join(words[: max(1, min(len(words) - 1, round(share * len(words))))])
        if self.kind == "stt_noise":
            assert self.wer is not None
            return corrupt(text, self.wer, seed=rng.randrange(2**32))
        if self.kind == "fillers":
            out: list[str] = []
            for word in words:
                if rng.random() < self.rate:
                    out.append(rng.choice(self.phrases))
                out.append(word)
            return " ".join(out)
        if self.kind == "repeat":
            out = []
            for i, word in enumerate(words):
                if rng.random() < self.rate:
                    span = words[i : i + rng.choice((1, 2))]
                    out.append(" ".join(w.rstrip(".,!?;:") for w in span) + "...")
                out.append(word)
            return " ".join(out)
        if self.kind in ("prepend", "append"):
            if rng.random() >= self.rate:
                return text
            phrase = rng.choice(self.phrases)
            if self.kind == "append":
                return f"{text} {phrase}"
            first = words[0]
            if phrase.endswith(",") and first[1:2].islower() and not first.startswith("I'"):
                text = text[0].lower() + text[1:]  # "Look, for four people", not "Look, For"
            return f"{phrase} {text}"
        if self.kind == "drop_words":
            dropped = {w.lower() for w in self.words}
            kept = [w for w in words if w.lower() not in dropped or rng.random() >= self.rate]
            return " ".join(kept) if kept else text
        for old, new in self.replace.items():  # replace_words
            pattern = re.compile(rf"(?<![\w']){re.escape(old)}(?![\w'])", re.IGNORECASE)
            text = pattern.sub(_maybe(new, self.rate, rng), text)
        return text


def _maybe(new: str, rate: float, rng: random.Random) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        return new if rng.random() < rate else match[0]

    return replace


class Persona(BaseModel):
    """A caller persona: instructions for a simulated caller, and rewrites of scripted turns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$", description="lower case, e.g. angry or elderly_slow"
    )
    description: str = Field(
        min_length=1, description="who the caller is, as told to a simulated caller"
    )
    transforms: tuple[Transform, ...] = Field(
        (), description="rewrites applied to each scripted caller turn, in order"
    )

    def apply(self, turn: str, seed: int = 0, index: int = 0) -> str:
        """Scripted caller turn ``index`` as this persona says it; deterministic for
        (persona, seed, index, turn)."""
        rng = random.Random(f"{self.name}\x00{seed}\x00{index}\x00{turn}")
        for transform in self.transforms:
            turn = transform.apply(turn, rng)
        return turn

    def apply_all(self, turns: Sequence[str], seed: int = 0) -> list[str]:
        """Every scripted turn through :meth:`apply`."""
        return [self.apply(turn, seed, i) for i, turn in enumerate(turns)]

    def with_wer(self, wer: float) -> Persona:
        """This persona with its speech-to-text noise at ``wer`` (added when it has none)."""
        noise = Transform(kind="stt_noise", wer=wer)
        kept = [t for t in self.transforms if t.kind != "stt_noise"]
        return self.model_copy(update={"transforms": (*kept, noise)})


class PersonaUse(BaseModel):
    """How a scenario or suite names a persona: ``angry``, ``{name: noisy_speech, wer: 0.3}``,
    or a whole persona written inline (with ``description``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="a persona's name, e.g. angry")
    wer: float | None = Field(
        None, ge=0.0, le=1.0, description="speech-to-text word error rate for this use, e.g. 0.2"
    )
    description: str | None = Field(None, description="for a persona written inline")
    transforms: tuple[Transform, ...] | None = Field(None, description="for an inline persona")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _inline_needs_description(self) -> PersonaUse:
        if self.transforms is not None and self.description is None:
            raise ValueError("an inline persona needs a description (who the caller is)")
        return self

    @property
    def inline(self) -> bool:
        return self.description is not None

    def resolve(self, library: dict[str, Persona]) -> Persona:
        """The persona this names (or defines), with ``wer`` applied. KeyError if unknown."""
        if self.description is not None:
            persona = Persona(
                name=self.name, description=self.description, transforms=self.transforms or ()
            )
        else:
            persona = library[self.name]
        return persona if self.wer is None else persona.with_wer(self.wer)


def load_persona_file(path: Path) -> tuple[Persona | None, list[Problem]]:
    """One persona file: (the persona, or None and the problems with their lines)."""
    data, node, problems = load_yaml(path)
    if problems:
        return None, problems
    try:
        persona = Persona.model_validate(data)
    except ValidationError as e:
        return None, problems_from(path, node, e, Persona)
    if persona.name != path.stem:
        line = node.start_mark.line + 1 if node else None
        message = f"name '{persona.name}' differs from the file name; rename one to match"
        return None, [Problem(path, line, message)]
    return persona, []


def load_personas(folder: Path) -> tuple[dict[str, Persona], list[Problem]]:
    """Every ``*.yaml`` persona in ``folder`` by name, and the problems found."""
    found: dict[str, Persona] = {}
    problems: list[Problem] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        persona, errors = load_persona_file(path)
        problems += errors
        if persona is not None:
            found[persona.name] = persona
    return found, problems


def builtin_personas() -> dict[str, Persona]:
    """The personas shipped with Backline (``evals/personas/``)."""
    found, problems = load_personas(BUILTIN_DIR)
    if problems:
        raise SuiteError(problems)
    return found
