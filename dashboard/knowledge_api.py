"""The Knowledge page's one action, "refresh now", sent to the API (never written directly).

Uses ``BACKLINE_API_URL`` with ``BACKLINE_API_KEY``; in development, without a key, the admin
token (the operator running ``make run``). Never logs or shows a token.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from core.settings import Settings


@dataclass(frozen=True)
class RefreshOutcome:
    ok: bool
    message: str


def _token(settings: Settings) -> str | None:
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    if settings.env == "development":
        return settings.admin_token.get_secret_value()
    return None


def request_refresh(source_id: str, settings: Settings | None = None) -> RefreshOutcome:
    s = settings or Settings()
    token = _token(s)
    if token is None:
        return RefreshOutcome(False, "set BACKLINE_API_KEY (a key with the content scope)")
    try:
        resp = httpx.post(
            f"{s.api_url.rstrip('/')}/v1/knowledge/sources/{source_id}/refresh",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        return RefreshOutcome(False, f"the API at {s.api_url} is not reachable ({exc})")
    if resp.status_code == 202:
        body = resp.json()
        how = "joined the refresh already running" if body.get("joined_running") else "started"
        return RefreshOutcome(True, f"Refresh {how} (workflow {body.get('workflow_id')}).")
    try:
        detail = resp.json().get("detail", resp.text)
    except ValueError:
        detail = resp.text
    return RefreshOutcome(False, f"the API refused ({resp.status_code}): {detail}")
