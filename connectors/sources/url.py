"""URL sources over HTTP: conditional GETs with ETag / If-Modified-Since.

A 304 answers "not modified" without a body; a 200 returns the bytes and the new validators.
Every failure raises ``FetchFailedError`` saying whether a retry may help (timeouts, 5xx, 429:
yes; 4xx, oversized or non-text content: no). HTTP-client retries are off: Temporal's retry
policy is the only retry owner. Never returns partial content, and never fetches link-local
addresses (cloud metadata endpoints live there).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from core.knowledge.ports import FetchFailedError, FetchRequest, FetchResult

USER_AGENT = "Backline-Knowledge/0.1 (+https://github.com/backline)"
MAX_BYTES = 20 * 1024 * 1024
TIMEOUT = httpx.Timeout(20.0, connect=5.0)


def _check_host(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchFailedError(f"not an http(s) URL: {url}", retryable=False)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchFailedError(f"cannot resolve {parts.hostname}: {exc}", retryable=True) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_link_local or address.is_multicast or address.is_unspecified:
            raise FetchFailedError(
                f"{parts.hostname} resolves to {address}, which knowledge sources may not reach",
                retryable=False,
            )


class HttpSourceFetcher:
    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport

    def fetch(self, request: FetchRequest) -> FetchResult:
        _check_host(request.url)
        headers = {"User-Agent": USER_AGENT, "Accept": "text/html, text/markdown, text/plain, "
                   "application/pdf;q=0.9, */*;q=0.5"}  # fmt: skip
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        try:
            with (
                httpx.Client(
                    timeout=TIMEOUT,
                    follow_redirects=True,
                    max_redirects=5,
                    transport=self._transport,
                ) as client,
                client.stream("GET", request.url, headers=headers) as resp,
            ):
                if resp.status_code == 304:
                    return FetchResult(
                        not_modified=True,
                        etag=resp.headers.get("etag") or request.etag,
                        last_modified=resp.headers.get("last-modified") or request.last_modified,
                        status_code=304,
                    )
                if resp.status_code != 200:
                    retryable = resp.status_code in (408, 425, 429) or resp.status_code >= 500
                    raise FetchFailedError(
                        f"GET {request.url} answered HTTP {resp.status_code}", retryable=retryable
                    )
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > MAX_BYTES:
                    raise FetchFailedError(
                        f"{request.url} is {declared} bytes; the limit is {MAX_BYTES}",
                        retryable=False,
                    )
                body = bytearray()
                for part in resp.iter_bytes():
                    body.extend(part)
                    if len(body) > MAX_BYTES:
                        raise FetchFailedError(
                            f"{request.url} is larger than {MAX_BYTES} bytes", retryable=False
                        )
                return FetchResult(
                    not_modified=False,
                    content=bytes(body),
                    content_type=resp.headers.get("content-type"),
                    etag=resp.headers.get("etag"),
                    last_modified=resp.headers.get("last-modified"),
                    status_code=200,
                )
        except httpx.TimeoutException as exc:
            raise FetchFailedError(f"GET {request.url} timed out: {exc}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise FetchFailedError(f"GET {request.url} failed: {exc}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise FetchFailedError(f"GET {request.url} failed: {exc}", retryable=False) from exc
