"""Personas: the built-in set loads, and each rewrites scripted turns the same way every time
for a seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.noise import word_error_rate
from evals.personas import (
    BUILTIN_DIR,
    Persona,
    PersonaUse,
    Transform,
    builtin_personas,
    load_persona_file,
)

TURNS = [
    "Hi, I'd like to book a table for four people tomorrow at seven thirty.",
    "The name is Dana Whitfield and my number is 415 555 0132.",
    "Is there parking near the restaurant, or should I take a cab?",
    "I don't think the confirmation arrived yesterday, can you send it again?",
] * 5

BUILTIN = (
    "angry", "confused", "elderly_slow", "interrupter", "off_topic", "noisy_speech", "non_native",
)  # fmt: skip


def test_builtin_personas_are_packaged() -> None:
    personas = builtin_personas()
    assert set(personas) == set(BUILTIN)
    assert all(p.description.strip() for p in personas.values())
    assert all((BUILTIN_DIR / f"{name}.yaml").is_file() for name in BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_transforms_are_deterministic_for_a_seed(name: str) -> None:
    persona = builtin_personas()[name]
    first = persona.apply_all(TURNS, seed=11)
    assert first == persona.apply_all(TURNS, seed=11)
    assert first != TURNS  # every built-in persona changes some turns
    assert persona.apply_all(TURNS, seed=12) != first


def test_interrupter_truncates() -> None:
    out = builtin_personas()["interrupter"].apply_all(TURNS, seed=1)
    cut = [(a, b) for a, b in zip(TURNS, out, strict=True) if a != b]
    assert len(cut) >= len(TURNS) // 3
    assert all(a.startswith(b) and len(b.split()) < len(a.split()) for a, b in cut)


def test_noisy_speech_and_wer_override() -> None:
    noisy = builtin_personas()["noisy_speech"]
    rates = [word_error_rate(a, b) for a, b in zip(TURNS, noisy.apply_all(TURNS), strict=True)]
    assert 0.05 < sum(rates) / len(rates) < 0.3
    heavy = PersonaUse.model_validate({"name": "noisy_speech", "wer": 0.4}).resolve(
        builtin_personas()
    )
    assert [t.wer for t in heavy.transforms] == [0.4]


def test_word_level_transforms() -> None:
    persona = Persona(
        name="t",
        description="test",
        transforms=(
            Transform(kind="drop_words", words=("the", "a"), rate=1.0),
            Transform(kind="replace_words", replace={"I'd like": "I want"}),
        ),
    )
    assert persona.apply("I'd like a table by the window.") == "I want table by window."
    elderly = builtin_personas()["elderly_slow"].apply_all(TURNS, seed=3)
    assert sum(len(b.split()) - len(a.split()) for a, b in zip(TURNS, elderly, strict=True)) > 0


def test_transform_parameters_fit_their_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wer has no effect on kind truncate"):
        Transform(kind="truncate", wer=0.1)
    with pytest.raises(ValueError, match="kind stt_noise needs wer"):
        Transform(kind="stt_noise")
    path = tmp_path / "shy.yaml"
    path.write_text("name: shy\ndescription: quiet\ntransforms:\n  - kind: mumble\n")
    persona, problems = load_persona_file(path)
    assert persona is None
    assert str(problems[0]).startswith(f"{path}:4: transforms[0].kind: Input should be")
