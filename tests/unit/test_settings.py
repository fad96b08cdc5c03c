"""Settings validate themselves: production refuses development secrets."""

from __future__ import annotations

import pytest

from core.settings import Settings


def test_production_refuses_default_secrets() -> None:
    # pydantic wraps the validator's InsecureSettingsError in a ValidationError (a ValueError).
    with pytest.raises(ValueError, match="BACKLINE_SECRET_KEY"):
        Settings(env="production")


def test_production_accepts_strong_secrets_and_sqlite_default_lives_in_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Settings(
        env="production",
        secret_key="x" * 40,
        admin_token="y" * 40,
        temporal_codec_keys="k1:" + "A" * 43 + "=",
        data_dir=tmp_path,
    )
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'backline.db'}"


def test_environment_variables_use_the_backline_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKLINE_API_PORT", "9123")
    monkeypatch.setenv("BACKLINE_DATABASE_URL", "postgresql+psycopg://u@h/db")
    s = Settings()
    assert s.api_port == 9123 and s.resolved_database_url == "postgresql+psycopg://u@h/db"


def test_production_refuses_short_or_empty_secrets() -> None:
    with pytest.raises(ValueError, match="shorter than 16"):
        Settings(env="production", secret_key="", admin_token="y" * 40)


def test_demo_default_credentials_are_detected() -> None:
    assert Settings().demo_uses_default_credentials is True
    strong = {
        "demo_vapi_token": "a" * 20,
        "demo_retell_api_key": "b" * 20,
        "demo_bland_secret": "c" * 20,
        "demo_bland_tool_token": "d" * 20,
    }
    assert Settings(**strong).demo_uses_default_credentials is False


def test_eval_nightly_cron_defaults_to_three_in_the_morning_and_is_documented(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    monkeypatch.delenv("BACKLINE_EVAL_NIGHTLY_CRON", raising=False)
    assert Settings().eval_nightly_cron == "0 3 * * *"
    monkeypatch.setenv("BACKLINE_EVAL_NIGHTLY_CRON", "30 1 * * 1-5")
    assert Settings().eval_nightly_cron == "30 1 * * 1-5"
    doc = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    assert "| `BACKLINE_EVAL_NIGHTLY_CRON` | `0 3 * * *` |" in doc
