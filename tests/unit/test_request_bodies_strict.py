"""Every number in a request body is a JSON number: a boolean or a numeric string is refused.

JSON Schema (what the OpenAPI promises and schemathesis checks) says ``integer``/``number``;
pydantic's lax mode would turn ``false`` into 0 and ``"5"`` into 5 and accept a request the
documentation says is invalid. This walks every model reachable from a request body in the
OpenAPI and sends each numeric field a boolean and a string.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from api.main import create_app


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield str(value).rsplit("/", 1)[1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _subclasses(cls: type[BaseModel]) -> Iterator[type[BaseModel]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _numeric_fields() -> list[tuple[type[BaseModel], str]]:
    spec = create_app().openapi()
    schemas = spec["components"]["schemas"]
    todo = [
        name
        for ops in spec["paths"].values()
        for op in ops.values()
        if isinstance(op, dict) and "requestBody" in op
        for name in _refs(op["requestBody"])
    ]
    names: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo += _refs(schemas.get(name, {}))
    ours = {
        c.__name__: c
        for c in _subclasses(BaseModel)
        if c.__module__.split(".")[0] in {"api", "core", "connectors"}
    }
    found = []
    for name in sorted(names):
        for field, prop in schemas[name].get("properties", {}).items():
            kinds = {alt.get("type") for alt in prop.get("anyOf", [prop])}
            if kinds & {"integer", "number"}:
                assert name in ours, f"no model class named {name} for the OpenAPI schema"
                found.append((ours[name], field))
    return found


FIELDS = _numeric_fields()


def test_the_walk_finds_the_numeric_fields() -> None:
    assert len(FIELDS) >= 20, FIELDS


@pytest.mark.parametrize(("model", "field"), FIELDS, ids=[f"{m.__name__}.{f}" for m, f in FIELDS])
@pytest.mark.parametrize("value", [True, False, "1"])
def test_a_numeric_field_refuses_booleans_and_strings(
    model: type[BaseModel], field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({field: value})
    assert any(e["loc"][:1] == (field,) for e in caught.value.errors()), caught.value
