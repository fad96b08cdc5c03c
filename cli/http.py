"""The CLI's HTTP client of the Backline API: one request, a clear error, JSON out.

Reads ``BACKLINE_API_URL`` and ``BACKLINE_API_KEY`` on every call; never prints the key.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer

from core.settings import Settings


def client(
    base_url: str | None = None, token: str | None = None, timeout: float = 30
) -> httpx.Client:
    """A client of the API at ``base_url`` with ``token``; either left out is read from the
    settings (``BACKLINE_API_URL``, ``BACKLINE_API_KEY``), and a missing key exits 2."""
    if base_url is None or token is None:
        s = Settings()
        if token is None:
            if s.api_key is None:
                typer.echo(
                    "error: set BACKLINE_API_KEY to an API key (or the admin token) first",
                    err=True,
                )
                raise typer.Exit(2)
            token = s.api_key.get_secret_value()
        if base_url is None:
            base_url = s.api_url
    return httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    )


def send(http: httpx.Client, method: str, path: str, body: Any = None, **params: Any) -> Any:
    """One request through ``http``; on a 4xx/5xx print ``error <status>: <Error>: <detail>``
    and exit 1 (also when the API cannot be reached). Parameters that are None are left out."""
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


def call(method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    """Send one request with the settings' URL and key (see ``send``)."""
    with client() as http:
        return send(http, method, path, body, **params)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
