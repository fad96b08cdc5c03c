"""Eval suites as folders of YAML files: the schema of a scenario and of ``suite.yaml``, and
:func:`load_suite`, which reads a folder and reports every mistake with its file and line.

A suite folder::

    evals/booking/
      suite.yaml            # name, agent, personas to cross with, repeats, caps, sandbox tools
      book_a_table.yaml     # one scenario per file (any *.yaml / *.yml, sub-folders too)
      refunds/late_order.yaml
      personas/regular.yaml # optional: the suite's own personas (override built-in ones)

The format of every key is in docs/evals.md. All models forbid unknown keys; a misspelt key
is reported with the closest allowed one ("did you mean 'tools_called'?").

Matching helpers (:meth:`ArgConstraint.matches`, :meth:`ToolCallExpectation.matches`,
:func:`phrase_matches`, :meth:`Outcome.matches`) are the single definition of what a scenario
file's checks mean, for whatever runs the scenarios.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.prompts.schemas import LABEL_PATTERN
from evals.files import Problem, SuiteError, load_yaml, locate, problems_from, suggest
from evals.personas import Persona, PersonaUse, builtin_personas, load_personas

__all__ = [
    "SUITE_FILE",
    "ArgConstraint",
    "Caller",
    "Case",
    "Expect",
    "Outcome",
    "PriorCall",
    "Problem",
    "SandboxServer",
    "Scenario",
    "Simulated",
    "Suite",
    "SuiteConfig",
    "SuiteError",
    "ToolCallExpectation",
    "ToolsConfig",
    "Turn",
    "load_scenario",
    "load_suite",
    "phrase_matches",
]

SUITE_FILE = "suite.yaml"
"""The suite's own file in a suite folder; every other *.yaml (outside personas/) is a scenario."""
PERSONAS_DIR = "personas"

_M = TypeVar("_M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile_phrase(value: str) -> str:
    """``/regex/`` (optionally ``/regex/i``) must compile; plain text is kept as it is."""
    if not value.strip():
        raise ValueError("an empty phrase matches everything; write the words to look for")
    m = re.fullmatch(r"/(.*)/(i?)", value, re.DOTALL)
    if m:
        try:
            re.compile(m[1], re.IGNORECASE if m[2] else 0)
        except re.error as e:
            raise ValueError(
                f"{value} is not a valid regular expression ({e}); "
                "write plain text, or escape special characters such as ( ) [ ] . ? * + "
                "with a backslash"
            ) from None
    return value


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(
                f"'{value}' is not a valid regular expression ({e}); "
                "escape special characters such as ( ) [ ] . ? * + with a backslash"
            ) from None
    return value


def _number_text(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Phrase = Annotated[str, AfterValidator(_compile_phrase)]
"""Text the agent must (not) say: plain text (case-insensitive substring) or ``/regex/``
(``/regex/i`` ignores case)."""
NumberText = Annotated[str, BeforeValidator(_number_text)]


def phrase_matches(phrase: str, text: str) -> bool:
    """Does ``text`` contain ``phrase`` (plain text ignoring case and repeated spaces, or a
    ``/regex/`` search)?"""
    m = re.fullmatch(r"/(.*)/(i?)", phrase, re.DOTALL)
    if m:
        return re.search(m[1], text, re.IGNORECASE if m[2] else 0) is not None
    squash = " ".join(phrase.split()).casefold()
    return squash in " ".join(text.split()).casefold()


def _same(expected: Any, actual: Any) -> bool:
    if expected == actual:
        return True
    if isinstance(expected, dict | list) or isinstance(actual, dict | list):
        return False
    return str(expected).strip().casefold() == str(actual).strip().casefold()


_MISSING = object()


def _dig(value: Any, path: str) -> Any:
    """``a.b.0.c`` into nested mappings and lists; ``_MISSING`` when absent."""
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


class ArgConstraint(_Model):
    """A check on one value (a tool argument, a field of a result). Write exactly one key; a
    bare value is short for ``equals``. Values compare as text ignoring case, so ``4`` and
    ``"4"`` match; to compare a whole mapping write ``equals: {...}``."""

    equals: Any = Field(None, description="the value, e.g. equals: 4")
    pattern: str | None = Field(None, description="a regular expression the value must match")
    one_of: list[Any] | None = Field(None, description="allowed values, e.g. one_of: [2, 3]")
    present: bool | None = Field(None, description="true: must be given; false: must be absent")

    @model_validator(mode="before")
    @classmethod
    def _bare_value(cls, value: object) -> object:
        return value if isinstance(value, dict) else {"equals": value}

    @model_validator(mode="after")
    def _exactly_one(self) -> ArgConstraint:
        if len(self.model_fields_set) != 1:
            raise ValueError(
                "write exactly one of equals, pattern, one_of, present "
                f"(got {', '.join(sorted(self.model_fields_set)) or 'none'})"
            )
        _check_regex(self.pattern)
        return self

    def matches(self, value: Any = _MISSING) -> bool:
        """Does ``value`` pass? Call with no argument when the value is absent."""
        if "present" in self.model_fields_set:
            return (value is not _MISSING) == bool(self.present)
        if value is _MISSING:
            return False
        if self.pattern is not None:
            return re.fullmatch(self.pattern, str(value)) is not None
        if self.one_of is not None:
            return any(_same(option, value) for option in self.one_of)
        return _same(self.equals, value)


class ToolCallExpectation(_Model):
    """A tool the agent must call, with constraints on its arguments."""

    name: str = Field(min_length=1, description="the tool's name, e.g. create_booking")
    args: dict[str, ArgConstraint] = Field(
        {}, description="argument (a.b for nested) -> constraint, e.g. party_size: 4"
    )

    def matches(self, name: str, arguments: dict[str, Any]) -> bool:
        """Does one call (its tool name and arguments) satisfy this expectation?"""
        if name != self.name:
            return False
        for path, constraint in self.args.items():
            value = _dig(arguments, path)
            if not (constraint.matches() if value is _MISSING else constraint.matches(value)):
                return False
        return True


class Outcome(_Model):
    """A business-outcome check: after the conversation, call ``tool`` (on ``server``) with
    ``args``; the result must contain a record matching ``where`` (or exactly ``count``)."""

    tool: str = Field(min_length=1, description="the tool to call, e.g. list_bookings")
    server: str | None = Field(None, description="the sandbox tool server that has the tool")
    args: dict[str, Any] = Field({}, description="arguments for the call")
    items: str | None = Field(
        None, description="where the records are in the result (a.b), if not the result itself"
    )
    where: dict[str, ArgConstraint] = Field(
        {}, description="field (a.b for nested) -> constraint a matching record meets"
    )
    count: int | None = Field(None, ge=0, description="exactly this many matching records")

    def matches(self, result: Any) -> bool:
        """Does the tool's result satisfy the check?"""
        records = result if self.items is None else _dig(result, self.items)
        if records is _MISSING:
            return False
        records = records if isinstance(records, list) else [records]
        hits = 0
        for record in records:
            ok = True
            for path, constraint in self.where.items():
                value = _dig(record, path)
                ok = constraint.matches() if value is _MISSING else constraint.matches(value)
                if not ok:
                    break
            hits += ok
        return hits >= 1 if self.count is None else hits == self.count


class Expect(_Model):
    """What a scenario checks once the conversation is over. Every key is optional."""

    tools_called: list[ToolCallExpectation] = Field(
        [], description="tools that must be called, with argument checks"
    )
    tools_not_called: list[str] = Field([], description="tools that must not be called")
    must_say: list[Phrase] = Field([], description="text or /regex/ the agent must say")
    must_not_say: list[Phrase] = Field([], description="text or /regex/ the agent must not say")
    numbers_from_knowledge: list[NumberText] = Field(
        [], description="numbers the agent must say, found in retrieved knowledge"
    )
    grounded: bool | None = Field(
        None,
        description="every number and named entity the agent states comes from knowledge, "
        "tool results or memory",
    )
    max_turns: int | None = Field(None, ge=1, description="the agent finishes within this")
    transfer: bool | None = Field(None, description="true: must transfer; false: must not")
    outcome: Outcome | None = Field(None, description="a tool call whose result must match")
    rubric: str | None = Field(None, description="what a good conversation looks like, judged")


class Turn(_Model):
    """One turn of an earlier conversation: ``caller: ...`` or ``agent: ...``."""

    caller: str | None = Field(None, description="what the caller said")
    agent: str | None = Field(None, description="what the agent said")

    @model_validator(mode="after")
    def _one_speaker(self) -> Turn:
        if (self.caller is None) == (self.agent is None):
            raise ValueError("a turn is either 'caller: ...' or 'agent: ...'")
        return self

    @property
    def role(self) -> str:
        return "caller" if self.caller is not None else "agent"

    @property
    def text(self) -> str:
        return self.caller if self.caller is not None else (self.agent or "")


class PriorCall(_Model):
    """An earlier conversation of the same caller, seeded into memory before the scenario."""

    turns: list[Turn] = Field(min_length=1, description="the conversation, turn by turn")


class Caller(_Model):
    """Who calls."""

    number: str | None = Field(
        None, pattern=r"^\+?[0-9][0-9 ()-]{2,}$", description="phone number, e.g. +14155550132"
    )
    prior_calls: list[PriorCall] = Field(
        [], description="earlier conversations to seed the caller's memory"
    )


class Simulated(_Model):
    """A simulated caller with a goal, instead of scripted turns."""

    goal: str = Field(min_length=1, description="what the caller wants, in plain words")
    max_turns: int = Field(10, ge=1, le=200, description="caller turns before giving up")


class Scenario(_Model):
    """One scenario file."""

    name: str = Field(min_length=1, description="a unique name, e.g. book a table for four")
    description: str = Field("", description="what the scenario is about, for people")
    tags: list[str] = Field([], description="labels to select subsets, e.g. [booking, smoke]")
    agent: str | None = Field(None, description="the agent to test; default: the suite's")
    version: int | None = Field(None, ge=1, description="an explicit prompt version")
    label: str | None = Field(
        None, pattern=LABEL_PATTERN, description="a prompt label, e.g. production or staging"
    )
    persona: PersonaUse | None = Field(None, description="who calls, e.g. angry")
    caller: Caller = Field(Caller(), description="the caller's number and earlier calls")
    opening: str | None = Field(None, description="the caller's first line")
    turns: list[str] | None = Field(None, min_length=1, description="the caller's lines")
    simulated: Simulated | None = Field(None, description="goal and max_turns")
    expect: Expect = Field(Expect(), description="the checks")

    @field_validator("label")
    @classmethod
    def _version_or_label(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("version") is not None:
            raise ValueError("write version or label, not both")
        return value

    @field_validator("simulated", mode="before")
    @classmethod
    def _turns_or_simulated(cls, value: object, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("turns") is not None:
            raise ValueError(
                "write either turns: (the caller's scripted lines) or simulated: (a goal for a "
                "simulated caller), not both"
            )
        return value

    @model_validator(mode="after")
    def _has_a_conversation(self) -> Scenario:
        if self.turns is None and self.simulated is None:
            raise ValueError(
                "add turns: (the caller's scripted lines) or simulated: (with a goal:)"
            )
        return self


def _seconds(value: object) -> object:
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", value)
        if not m or not any(m.groups()):
            raise ValueError(f"'{value}' is not a duration; write e.g. 90s, 30m, 1h or 1h30m")
        h, mi, s = (int(g or 0) for g in m.groups())
        return h * 3600 + mi * 60 + s
    return value


class SandboxServer(_Model):
    """A tool server for evals: ``url`` (streamable HTTP) or ``command`` (stdio)."""

    url: str | None = Field(
        None, pattern=r"^https?://", description="e.g. http://127.0.0.1:9001/mcp"
    )
    command: list[str] | None = Field(None, min_length=1, description="e.g. [python, server.py]")
    env: dict[str, str] = Field({}, description="environment for the command")

    @model_validator(mode="before")
    @classmethod
    def _command_string(cls, value: object) -> object:
        if isinstance(value, dict) and isinstance(value.get("command"), str):
            return {**value, "command": value["command"].split()}
        return value

    @model_validator(mode="after")
    def _url_or_command(self) -> SandboxServer:
        if (self.url is None) == (self.command is None):
            raise ValueError("write url: (an HTTP server) or command: (a stdio server), one")
        return self


class ToolsConfig(_Model):
    """Which tool servers evals may call."""

    sandbox: dict[str, SandboxServer] = Field(
        {}, description="name -> sandbox tool server used instead of the real one"
    )
    allow_production_tools: bool = Field(
        False, description="true lets evals call the agent's real tool servers"
    )


class SuiteConfig(_Model):
    """``suite.yaml``."""

    name: str = Field(min_length=1, description="the suite's name, e.g. booking")
    description: str = Field("", description="what the suite covers")
    agent: str | None = Field(None, description="the default agent of its scenarios")
    version: int | None = Field(None, ge=1, description="default prompt version")
    label: str | None = Field(None, pattern=LABEL_PATTERN, description="default prompt label")
    personas: list[PersonaUse] = Field(
        [], description="personas every scenario without its own is run as"
    )
    repeats: int = Field(1, ge=1, le=10_000, description="runs of each scenario and persona")
    concurrency: int = Field(4, ge=1, le=256, description="conversations at once")
    time_cap: Annotated[float | None, BeforeValidator(_seconds)] = Field(
        None, gt=0, description="stop after this long, e.g. 30m"
    )
    cost_cap: float | None = Field(None, gt=0, description="stop after this many dollars")
    seed: int = Field(0, description="base seed for persona rewrites")
    tools: ToolsConfig = Field(ToolsConfig(), description="sandbox tool servers")

    @field_validator("label")
    @classmethod
    def _version_or_label(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("version") is not None:
            raise ValueError("write version or label, not both")
        return value


@dataclass(frozen=True)
class Case:
    """One conversation to run: a scenario, as a persona (or none), the n-th repeat."""

    scenario: Scenario
    persona: Persona | None
    repeat: int
    seed: int

    @property
    def opening(self) -> str | None:
        """The caller's opening line after the persona's rewrites."""
        opening = self.scenario.opening
        if opening is None or self.persona is None:
            return opening
        return self.persona.apply(opening, self.seed, index=-1)

    @property
    def caller_turns(self) -> list[str] | None:
        """The scripted caller lines after the persona's rewrites (None when simulated)."""
        turns = self.scenario.turns
        if turns is None or self.persona is None:
            return turns
        return self.persona.apply_all(turns, self.seed)


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its config, its scenarios (in file order) and the personas it can use."""

    root: Path
    config: SuiteConfig
    scenarios: tuple[Scenario, ...]
    sources: dict[str, Path]
    """scenario name -> its file."""
    personas: dict[str, Persona]
    """Built-in personas, overridden and extended by the suite's personas/ folder."""

    def select(
        self, tags: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> list[Scenario]:
        """Scenarios with any of ``tags`` (all when None) and none of ``exclude``."""
        wanted = set(tags) if tags is not None else None
        unwanted = set(exclude or ())
        return [
            s
            for s in self.scenarios
            if (wanted is None or wanted & set(s.tags)) and not unwanted & set(s.tags)
        ]

    def agent_for(self, scenario: Scenario) -> str | None:
        return scenario.agent or self.config.agent

    def target_for(self, scenario: Scenario) -> int | str | None:
        """The prompt version (int) or label (str) a scenario runs against; None: production."""
        if scenario.version is not None or scenario.label is not None:
            return scenario.version if scenario.version is not None else scenario.label
        return self.config.version if self.config.version is not None else self.config.label

    def personas_for(self, scenario: Scenario) -> list[Persona | None]:
        """The scenario's own persona, else every suite persona, else none (``[None]``)."""
        if scenario.persona is not None:
            return [scenario.persona.resolve(self.personas)]
        if self.config.personas:
            return [use.resolve(self.personas) for use in self.config.personas]
        return [None]

    def cases(
        self, tags: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> list[Case]:
        """Every conversation to run: selected scenarios x personas x repeats."""
        out = []
        for scenario in self.select(tags, exclude):
            for persona in self.personas_for(scenario):
                for repeat in range(self.config.repeats):
                    out.append(Case(scenario, persona, repeat, self.config.seed + repeat))
        return out


def _validate(path: Path, model: type[_M]) -> tuple[_M | None, yaml.Node | None, list[Problem]]:
    data, node, problems = load_yaml(path)
    if problems:
        return None, node, problems
    if data is None:
        what = "name: and turns: (or simulated:)" if model is Scenario else "name:"
        return None, node, [Problem(path, None, f"the file is empty; it needs at least {what}")]
    try:
        return model.model_validate(data), node, []
    except ValidationError as e:
        return None, node, problems_from(path, node, e, model)


def load_scenario(path: Path) -> Scenario:
    """One scenario file; SuiteError lists every problem with its line."""
    scenario, _, problems = _validate(path, Scenario)
    if problems or scenario is None:
        raise SuiteError(problems)
    return scenario


def _scenario_files(root: Path) -> list[Path]:
    files = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        rel = path.relative_to(root)
        if rel.parts[0] == PERSONAS_DIR or rel == Path(SUITE_FILE):
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        files.append(path)
    return files


def _persona_problems(
    path: Path,
    node: yaml.Node | None,
    loc: tuple[str | int, ...],
    use: PersonaUse,
    library: dict[str, Persona],
) -> list[Problem]:
    if use.inline or use.name in library:
        return []
    line = locate(node, loc)
    return [Problem(path, line, f"unknown persona '{use.name}'" + suggest(use.name, library))]


def load_suite(folder: str | Path) -> Suite:
    """Read a suite folder: ``suite.yaml``, every scenario file, the suite's personas.

    Raises SuiteError listing every problem found in every file (each with its file, line and
    what to write), after checking also that scenario names are unique, every persona named
    exists, and every outcome check's server is a sandbox server (unless
    ``allow_production_tools``).
    """
    root = Path(folder)
    suite_path = root / SUITE_FILE
    if not root.is_dir():
        raise SuiteError([Problem(root, None, "no such folder")])
    if not suite_path.is_file():
        message = "no suite.yaml in the folder; create one with at least 'name: <suite name>'"
        raise SuiteError([Problem(suite_path, None, message)])
    problems: list[Problem] = []
    config, suite_node, errors = _validate(suite_path, SuiteConfig)
    problems += errors
    library = builtin_personas()
    if (root / PERSONAS_DIR).is_dir():
        own, errors = load_personas(root / PERSONAS_DIR)
        library |= own
        problems += errors
    if config is not None:
        for i, use in enumerate(config.personas):
            problems += _persona_problems(suite_path, suite_node, ("personas", i), use, library)

    scenarios: list[Scenario] = []
    sources: dict[str, Path] = {}
    name_lines: dict[str, tuple[Path, int | None]] = {}
    for path in _scenario_files(root):
        scenario, node, errors = _validate(path, Scenario)
        problems += errors
        if scenario is None:
            raw = node.value if isinstance(node, yaml.MappingNode) else []
            named = [v.value for k, v in raw if k.value == "persona" and v.tag.endswith(":str")]
            for name in named:  # still worth naming a misspelt persona in an invalid file
                use = PersonaUse(name=name)
                problems += _persona_problems(path, node, ("persona",), use, library)
            continue
        line = locate(node, ("name",))
        if scenario.name in name_lines:
            first, first_line = name_lines[scenario.name]
            problems.append(
                Problem(
                    path,
                    line,
                    f"scenario name '{scenario.name}' is already used in {first}:{first_line}; "
                    "give each scenario its own name",
                )
            )
            continue
        name_lines[scenario.name] = (path, line)
        if scenario.persona is not None:
            problems += _persona_problems(path, node, ("persona",), scenario.persona, library)
        outcome = scenario.expect.outcome
        if outcome is not None and config is not None and not config.tools.allow_production_tools:
            sandbox = config.tools.sandbox
            if outcome.server is not None and outcome.server not in sandbox:
                problems.append(
                    Problem(
                        path,
                        locate(node, ("expect", "outcome", "server")),
                        f"server '{outcome.server}' is not a sandbox server in suite.yaml"
                        + suggest(outcome.server, sandbox)
                        + "; add it under tools: sandbox:, or set "
                        "tools: allow_production_tools: true",
                    )
                )
        scenarios.append(scenario)
        sources[scenario.name] = path
    if config is not None and not scenarios and not problems:
        problems.append(Problem(root, None, "no scenario files (*.yaml) next to suite.yaml"))
    if problems or config is None:
        order = {path: i for i, path in enumerate([suite_path, *_scenario_files(root)])}
        problems.sort(key=lambda p: (order.get(p.file, -1), p.line or 0))
        raise SuiteError(problems)
    return Suite(root, config, tuple(scenarios), sources, library)
