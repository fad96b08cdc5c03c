"""A prompt version's compliance checks: validated when pushed, hashed only when declared."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.prompts.schemas import ComplianceCheckSpec, PromptVersionCreate
from core.prompts.service import content_hash


def version(**extra: object) -> PromptVersionCreate:
    return PromptVersionCreate.model_validate({"template": "Hi", "message": "m", **extra})


def test_a_check_has_exactly_one_valid_rule() -> None:
    assert ComplianceCheckSpec(name="notice", must_say="recorded").must_say == "recorded"
    with pytest.raises(ValidationError, match="exactly one of must_say, must_not_say"):
        ComplianceCheckSpec(name="both", must_say="a", must_not_say="b")
    with pytest.raises(ValidationError, match="exactly one of must_say, must_not_say"):
        ComplianceCheckSpec(name="none")
    with pytest.raises(ValidationError, match="invalid pattern"):
        ComplianceCheckSpec(name="bad", must_say="(unclosed")
    with pytest.raises(ValidationError):
        ComplianceCheckSpec(name="Not A Name", must_say="x")


def test_check_names_are_unique_and_their_number_bounded() -> None:
    with pytest.raises(ValidationError, match="unique"):
        version(compliance=[{"name": "a", "must_say": "x"}, {"name": "a", "must_say": "y"}])
    with pytest.raises(ValidationError):
        version(compliance=[{"name": f"c{i}", "must_say": "x"} for i in range(21)])


def test_versions_without_checks_keep_their_content_hash() -> None:
    plain = version()
    checked = version(compliance=[{"name": "notice", "must_say": "recorded"}])

    assert content_hash(plain) == content_hash(version(compliance=[]))
    assert content_hash(checked) != content_hash(plain)
