"""Backline's one settings class (environment variables prefixed ``BACKLINE_``).

Only composition roots (API lifespan, worker, CLI, dashboard data) read settings; deeper code
receives the clients built from them. Secrets are ``SecretStr`` and are never logged.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-secret-key-change-me"
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_DEMO_VAPI_TOKEN = "demo-vapi-token"
DEV_DEMO_RETELL_API_KEY = "demo-retell-api-key"
DEV_DEMO_BLAND_SECRET = "demo-bland-secret"
DEV_DEMO_BLAND_TOOL_TOKEN = "demo-bland-tool-token"


class InsecureSettingsError(ValueError):
    """Production was asked to run with a development default secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKLINE_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".backline")
    database_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    task_queue: str = "backline"
    weaviate_url: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8501
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 20.0
    raw_payload_retention_days: int = Field(default=7, ge=0)
    # Tool gateway: calls per minute per organization (each API process), and how often the
    # tool lists of registered MCP servers are re-read.
    tools_org_calls_per_minute: int = Field(default=3000, ge=1)
    tools_refresh_interval_s: float = Field(default=300.0, ge=5.0)
    # A call still in progress with nothing heard for this long (typically: only a context
    # request, no end-of-call report) is closed as abandoned by a Temporal Schedule that runs
    # every calls_abandon_sweep_s.
    calls_abandon_after_s: int = Field(default=3600, ge=60)
    calls_abandon_sweep_s: int = Field(default=300, ge=10)
    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None
    demo_vapi_token: SecretStr = SecretStr(DEV_DEMO_VAPI_TOKEN)
    demo_retell_api_key: SecretStr = SecretStr(DEV_DEMO_RETELL_API_KEY)
    demo_bland_secret: SecretStr = SecretStr(DEV_DEMO_BLAND_SECRET)
    demo_bland_tool_token: SecretStr = SecretStr(DEV_DEMO_BLAND_TOOL_TOKEN)

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        if self.env != "production":
            return self
        defaults = {
            "BACKLINE_SECRET_KEY": (self.secret_key, DEV_SECRET_KEY),
            "BACKLINE_ADMIN_TOKEN": (self.admin_token, DEV_ADMIN_TOKEN),
        }
        weak = [
            name
            for name, (value, dev) in defaults.items()
            if value.get_secret_value() in (dev, "") or len(value.get_secret_value()) < 16
        ]
        if weak:
            raise InsecureSettingsError(
                f"{', '.join(weak)} still hold the development default or are shorter than 16 "
                "characters; set a strong random "
                "value (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) "
                "before running with BACKLINE_ENV=production"
            )
        return self

    @property
    def demo_uses_default_credentials(self) -> bool:
        """True when any demo platform credential is still its public development default."""
        pairs = (
            (self.demo_vapi_token, DEV_DEMO_VAPI_TOKEN),
            (self.demo_retell_api_key, DEV_DEMO_RETELL_API_KEY),
            (self.demo_bland_secret, DEV_DEMO_BLAND_SECRET),
            (self.demo_bland_tool_token, DEV_DEMO_BLAND_TOOL_TOKEN),
        )
        return any(value.get_secret_value() == dev for value, dev in pairs)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'backline.db').resolve()}"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url)
