"""Backline's one settings class (environment variables prefixed ``BACKLINE_``).

Only composition roots (API lifespan, worker, CLI, dashboard data) read settings; deeper code
receives the clients built from them. Secrets are ``SecretStr`` and are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.egress import AllowList

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
    # Keyring of the Temporal payload codec: "id:base64key,id:base64key" (32-byte AES keys);
    # the first encrypts, every one decrypts. Unset: one key derived from SECRET_KEY
    # (development only).
    temporal_codec_keys: SecretStr | None = None
    # The Temporal UI's origin, allowed by CORS on the codec endpoint. Unset: the dev server's UI.
    temporal_ui_origin: str | None = None
    weaviate_url: str | None = None
    # The MiniLM backend: onnx (exported once into model_dir, no torch in the process) or torch.
    embedder: Literal["onnx", "torch"] = "onnx"
    model_dir: Path | None = None
    public_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    admin_token: SecretStr = SecretStr(DEV_ADMIN_TOKEN)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # How long the API keeps an idle connection open: longer than the idle timeout of the proxies
    # and HTTP clients in front of it (60 s is the common default), so no client sends a request
    # on a connection the server is closing at that moment (uvicorn's own default is 5 s).
    api_keep_alive_s: int = Field(default=75, ge=1)
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8501
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = 20.0
    # Post-call analysis through the LLM above; false keeps it on the non-LLM path (`backline up`
    # sets it false for the demo's local scripted model, which answers as an agent, not in JSON).
    llm_analysis: bool = True
    # The agent runtime's chat model (same endpoint and key): tried once when the primary
    # model fails before answering.
    llm_fallback_model: str | None = None
    # The agent runtime (text mode and the custom-LLM endpoint): a knowledge retrieval for every
    # caller turn, shown to the model, and at most this many tool rounds per turn.
    agent_knowledge_per_turn: bool = True
    agent_max_tool_rounds: int = Field(default=4, ge=0, le=16)
    raw_payload_retention_days: int = Field(default=7, ge=0)
    # Tool gateway: calls per minute per organization (each API process), and how often the
    # tool lists of registered MCP servers are re-read.
    tools_org_calls_per_minute: int = Field(default=3000, ge=1)
    tools_refresh_interval_s: float = Field(default=300.0, ge=5.0)
    # After a forget on Postgres, rewrite the touched tables (VACUUM FULL, an exclusive lock)
    # instead of a plain VACUUM, so the erased bytes leave the data files too.
    forget_vacuum_full: bool = False
    # Operator-only: intranet hosts and networks (comma-separated host names, *.domain
    # suffixes, addresses or CIDRs) that tenant-aimed requests (URL sources, HTTP MCP servers,
    # alert webhooks) may reach although they are not public. No API field widens it.
    egress_allow: str = ""
    # The edge: the largest request body accepted (long transcripts fit in a few MB), and
    # failed authentications allowed per source address per minute before answering 429.
    max_body_bytes: int = Field(default=5_000_000, ge=64 * 1024)
    auth_failures_per_minute: int = Field(default=60, ge=1)
    # A call still in progress with nothing heard for this long (typically: only a context
    # request, no end-of-call report) is closed as abandoned by a Temporal Schedule that runs
    # every calls_abandon_sweep_s.
    calls_abandon_after_s: int = Field(default=3600, ge=60)
    # The share of scored calls the LLM judge also grades post-call (docs/monitoring.md); only
    # acted on when an LLM is configured (BACKLINE_LLM_BASE_URL).
    judge_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # The judge's pass mark: a rubric passes at this score (0-1) or above.
    judge_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    # Eval runs judge and simulate callers with deepeval's metrics and ConversationSimulator
    # (docs/evals.md) when an LLM is configured and deepeval is installed (it is optional).
    eval_deepeval: bool = False
    calls_abandon_sweep_s: int = Field(default=300, ge=10)
    # Call traces (docs/monitoring.md#traces): after scoring, each call is exported as an
    # OpenTelemetry trace over OTLP/HTTP to a collector, to Langfuse, or both; neither set:
    # nothing is exported. Operator-configured endpoints, so the tenant egress policy does not
    # apply to them.
    otlp_endpoint: str | None = None
    otlp_headers: SecretStr | None = None
    langfuse_host: str | None = None
    langfuse_public_key: str | None = None
    langfuse_secret_key: SecretStr | None = None
    # Per target, kept short: the export runs at the end of the post-call score step (10 s in
    # all), one target after the other.
    trace_export_timeout_s: float = Field(default=3.0, gt=0.0, le=3.0)
    # How often each agent's drift-watch schedule feeds its new scored calls to the drift
    # monitors (docs/monitoring.md, "Drift watch").
    drift_watch_interval_s: int = Field(default=300, ge=10)
    # When each registered eval suite's nightly schedule runs it on production (docs/evals.md).
    eval_nightly_cron: str = Field(default="0 3 * * *", min_length=9, max_length=100)
    # What eval runs' LLM tokens cost (USD per 1,000 tokens), for run costs and the cost cap
    # (docs/evals.md#cost): per model in ``EVAL_MODEL_PRICES`` (JSON: {"model": [input,
    # output]}), else these two for every model. Unset: costs are unknown, a cap is not enforced.
    eval_price_per_1k_input: float | None = Field(default=None, ge=0.0)
    eval_price_per_1k_output: float | None = Field(default=None, ge=0.0)
    eval_model_prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None
    demo_vapi_token: SecretStr = SecretStr(DEV_DEMO_VAPI_TOKEN)
    demo_retell_api_key: SecretStr = SecretStr(DEV_DEMO_RETELL_API_KEY)
    demo_bland_secret: SecretStr = SecretStr(DEV_DEMO_BLAND_SECRET)
    demo_bland_tool_token: SecretStr = SecretStr(DEV_DEMO_BLAND_TOOL_TOKEN)

    @field_validator("egress_allow")
    @classmethod
    def _valid_egress_allow(cls, value: str) -> str:
        AllowList.parse(value)  # a malformed entry fails at startup, naming it
        return value

    @field_validator("otlp_endpoint", "langfuse_host")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _langfuse_complete(self) -> Settings:
        parts = {
            "BACKLINE_LANGFUSE_HOST": bool(self.langfuse_host),
            "BACKLINE_LANGFUSE_PUBLIC_KEY": bool(self.langfuse_public_key),
            "BACKLINE_LANGFUSE_SECRET_KEY": bool(
                self.langfuse_secret_key and self.langfuse_secret_key.get_secret_value()
            ),
        }
        if any(parts.values()) and not all(parts.values()):
            missing = ", ".join(name for name, set_ in parts.items() if not set_)
            raise ValueError(f"Langfuse export needs all three LANGFUSE settings; {missing} unset")
        return self

    @model_validator(mode="after")
    def _check_otlp_headers(self) -> Settings:
        self.otlp_header_map()  # a malformed header list fails at start, not at the first export
        return self

    def otlp_header_map(self) -> dict[str, str]:
        """``BACKLINE_OTLP_HEADERS`` (``name=value,name=value``) as a mapping."""
        raw = self.otlp_headers.get_secret_value() if self.otlp_headers else ""
        headers: dict[str, str] = {}
        for entry in raw.split(","):
            if not entry.strip():
                continue
            name, sep, value = entry.partition("=")
            if not sep or not name.strip():
                raise ValueError(
                    "BACKLINE_OTLP_HEADERS must be comma-separated name=value pairs; "
                    "an entry has no name or no '='"
                )
            headers[name.strip()] = value.strip()
        return headers

    @property
    def langfuse_configured(self) -> bool:
        return bool(self.langfuse_host and self.langfuse_public_key and self.langfuse_secret_key)

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
        if self.temporal_codec_keys is None:
            raise InsecureSettingsError(
                "BACKLINE_TEMPORAL_CODEC_KEYS is unset: production refuses the development key "
                "derived from BACKLINE_SECRET_KEY; set it to 'id:<base64 of 32 random bytes>' "
                '(e.g. `python -c \'import base64,os; print("k1:" + '
                "base64.b64encode(os.urandom(32)).decode())'`)"
            )
        return self

    @model_validator(mode="after")
    def _check_codec_keys(self) -> Settings:
        self.temporal_codec_keyring()  # a malformed keyring fails at start, not mid-workflow
        return self

    def temporal_codec_keyring(self) -> list[tuple[str, bytes]]:
        """The payload codec's keys, newest first: ``[(key id, 32-byte key), ...]``."""
        if self.temporal_codec_keys is None:
            derived = hmac.new(
                self.secret_key.get_secret_value().encode(),
                b"backline temporal payload codec",
                hashlib.sha256,
            ).digest()
            # The id names the derived key, so rotating SECRET_KEY is visible in old payloads.
            return [(f"derived-{hashlib.sha256(derived).hexdigest()[:8]}", derived)]
        keys: list[tuple[str, bytes]] = []
        for entry in self.temporal_codec_keys.get_secret_value().split(","):
            key_id, sep, encoded = entry.strip().partition(":")
            try:
                key = base64.b64decode(encoded.strip(), validate=True) if sep else b""
            except binascii.Error:
                key = b""
            if not key_id.strip() or len(key) != 32:
                raise ValueError(
                    "BACKLINE_TEMPORAL_CODEC_KEYS must be a comma-separated list of "
                    "'id:<base64 of 32 bytes>' entries, newest first; an entry is malformed"
                )
            keys.append((key_id.strip(), key))
        if len({k for k, _ in keys}) != len(keys):
            raise ValueError("BACKLINE_TEMPORAL_CODEC_KEYS repeats a key id; give each key its own")
        return keys

    @property
    def temporal_ui_origins(self) -> list[str]:
        """Origins allowed to call the codec endpoint from a browser (the Temporal UI)."""
        if self.temporal_ui_origin:
            return [self.temporal_ui_origin.rstrip("/")]
        port = self.temporal_ui_port
        return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]

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
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url)
