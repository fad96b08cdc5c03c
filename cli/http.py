"""The CLI's HTTP client of the Backline API: one request, a clear error, JSON out.

Reads ``BACKLINE_API_URL`` and ``BACKLINE_API_KEY`` on every call; never prints the key.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer

from core.settings import Settings


def client() -> httpx.Client:
    s = Settings()
    if s.api_key is None:
        typer.echo("error: set BACKLINE_API_KEY to an API key (or the admin token) first", err=True)
        raise typer.Exit(2)
    return httpx.Client(
        base_url=s.api_url,
        headers={"Authorization": f"Bearer {s.api_key.get_secret_value()}"},
        timeout=30,
    )


def call(method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    """Send one request; on a 4xx/5xx print ``error <status>: <Error>: <detail>`` and exit 1."""
    with client() as http:
        try:
            resp = http.request(
                method, path, json=body, params={k: v for k, v in params.items() if v is not None}
            )
        except httpx.HTTPError as exc:
            typer.echo(f"error: cannot reach the API at {http.base_url}: {exc}", err=True)
            raise typer.Exit(1) from exc
    if resp.status_code >= 400:
        try:
            err = resp.json()
            typer.echo(
                f"error {resp.status_code}: {err.get('error')}: {err.get('detail')}", err=True
            )
        except ValueError:
            typer.echo(f"error {resp.status_code}: {resp.text}", err=True)
        raise typer.Exit(1)
    return resp.json()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
