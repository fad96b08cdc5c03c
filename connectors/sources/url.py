"""URL sources over HTTP: conditional GETs with ETag / If-Modified-Since.

A 304 answers "not modified" without a body; a 200 returns the bytes and the new validators.
Every failure raises ``FetchFailedError`` saying whether a retry may help (timeouts, 5xx, 429:
yes; 4xx, oversized or non-text content: no). HTTP-client retries are off: Temporal's retry
policy is the only retry owner. Never returns partial content, and never fetches an address the
egress policy refuses (loopback, private, link-local...: ``core.egress``), on the first request or
on any redirect; a refusal is a non-retryable failure naming the address class.
"""

from __future__ import annotations

import httpx

from connectors.egress import MAX_REDIRECTS, egress_client
from core.egress import EgressDeniedError, EgressPolicy, UnresolvableHostError
from core.knowledge.ports import FetchFailedError, FetchRequest, FetchResult

USER_AGENT = "Backline-Knowledge/0.1 (+https://github.com/backline)"
MAX_BYTES = 20 * 1024 * 1024
TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class HttpSourceFetcher:
    """Fetches through the egress guard (``connectors.egress``): a URL a tenant gave never
    reaches a loopback, private or other non-public address, nor one of Backline's services,
    unless the operator admitted it."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy

    def fetch(self, request: FetchRequest) -> FetchResult:
        headers = {"User-Agent": USER_AGENT, "Accept": "text/html, text/markdown, text/plain, "
                   "application/pdf;q=0.9, */*;q=0.5"}  # fmt: skip
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        try:
            with (
                egress_client(
                    self._policy,
                    timeout=TIMEOUT,
                    follow_redirects=True,
                    max_redirects=MAX_REDIRECTS,
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
        except EgressDeniedError as exc:
            raise FetchFailedError(exc.detail, retryable=False) from exc
        except UnresolvableHostError as exc:
            raise FetchFailedError(exc.detail, retryable=True) from exc
        except httpx.TimeoutException as exc:
            raise FetchFailedError(f"GET {request.url} timed out: {exc}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise FetchFailedError(f"GET {request.url} failed: {exc}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise FetchFailedError(f"GET {request.url} failed: {exc}", retryable=False) from exc
