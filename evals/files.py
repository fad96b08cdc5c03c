"""Reading eval YAML files with line numbers, and turning validation errors into messages that
name the file, the line and what to write.

Files are read with PyYAML's safe loader, minus two YAML 1.1 surprises for people writing
scenarios by hand: dates (``2026-12-08``) stay text, and ``12:30`` stays text (YAML 1.1 reads it
as the base-60 number 750). A file is parsed twice: once to data, once to the node tree that
carries each key's and value's line.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

__all__ = ["Problem", "SuiteError", "load_yaml", "locate", "problems_from", "suggest"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an eval file: where, and what to write instead."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


class SuiteError(Exception):
    """An eval suite (or one of its files) is invalid. ``problems`` lists every error found,
    not only the first; ``str()`` gives one ``file:line: message`` line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the eval files:\n{lines}")


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader without timestamps and base-60 numbers."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag != "tag:yaml.org,2002:timestamp" and not regexp.match("1:30")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# The int and float resolvers matched "1:30" through their base-60 branch; put back plain ones.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """(data, node tree, problems) for one file. A syntax error or a duplicated key is a
    problem with its line; the data is then None."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, None, [Problem(path, None, f"cannot read the file: {e}")]
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = f"{e.problem or e.context}".strip()
        hint = (
            "; check the indentation and that a value containing ': ' or starting with "
            "'[', '{', '*', '&', '!' or '%' is in quotes"
        )
        return None, None, [Problem(path, line, f"this is not valid YAML: {what}{hint}")]
    except yaml.YAMLError as e:
        return None, None, [Problem(path, None, f"this is not valid YAML: {e}")]
    problems = list(_duplicates(path, node))
    return (None if problems else data), node, problems


def _duplicates(path: Path, node: yaml.Node | None) -> list[Problem]:
    found: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                found.append(
                    Problem(
                        path,
                        key.start_mark.line + 1,
                        f"'{name}' is written twice (first on line {seen[name]}); keep one",
                    )
                )
            seen.setdefault(name, key.start_mark.line + 1)
            found += _duplicates(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicates(path, item)
    return found


def locate(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of ``loc`` (a pydantic error location) in the node tree: the line of
    its key, or of its list item. Parts of ``loc`` absent from the file (a missing key, a
    union's tag) are skipped, so the answer is the closest enclosing line."""
    if node is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                continue
            key_node, node = match
            line = int(key_node.start_mark.line) + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                continue
            node = node.value[part]
            line = int(node.start_mark.line) + 1
    return line


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice, or the list of choices."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    if options and len(options) <= 20:
        return f"; allowed here: {', '.join(options)}"
    return ""


_HINTS = {
    "string_type": "write text",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_type": "write a number",
    "float_parsing": "write a number",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "list_type": "write a list: one item per line, each starting with '- '",
    "tuple_type": "write a list: one item per line, each starting with '- '",
    "dict_type": "write a mapping: 'key: value' lines, indented under this key",
    "model_type": "write a mapping: 'key: value' lines, indented under this key",
    "model_attributes_type": "write a mapping: 'key: value' lines, indented under this key",
    "literal_error": "",
}


def _path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            arms = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(arms) != 1:
                return tp
            tp = arms[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that owns the last part of ``loc`` (for suggestions and field help)."""
    tp: Any = model
    for part in loc[:-1]:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if isinstance(part, str) and part in tp.model_fields:
                tp = tp.model_fields[part].annotation
        elif origin in (list, tuple) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def problems_from(
    path: Path, node: yaml.Node | None, error: ValidationError, model: type[BaseModel]
) -> list[Problem]:
    """Every error of a validation as a Problem with its line and what to write."""
    found = []
    for err in error.errors():
        loc = tuple(err["loc"])
        kind = err["type"]
        owner = _model_at(model, loc)
        last = str(loc[-1]) if loc else ""
        where = _path(loc)
        if kind == "extra_forbidden":
            fields = list(owner.model_fields) if owner else []
            message = f"'{last}' is not a key here" + suggest(last, fields)
            found.append(Problem(path, locate(node, loc), message))
            continue
        if kind == "missing":
            help_text = ""
            if owner and last in owner.model_fields:
                help_text = owner.model_fields[last].description or ""
            parent = _path(loc[:-1])
            message = f"missing '{last}'" + (f" under '{parent}'" if parent else "")
            message += f"; add '{last}:'" + (f" ({help_text})" if help_text else "")
            found.append(Problem(path, locate(node, loc[:-1]), message))
            continue
        msg = str(err["msg"])
        if kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind in _HINTS:
            hint = _HINTS[kind]
            shown = repr(err.get("input"))
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            msg = f"{msg} (got {shown})" + (f"; {hint}" if hint else "")
        found.append(Problem(path, locate(node, loc), f"{where}: {msg}" if where else msg))
    return found
