"""The egress guard: every request whose target a tenant chooses goes through here (knowledge
URL sources, HTTP MCP servers, alert webhooks). The rules are ``core.egress``; this module
applies them where they cannot be dodged.

How: the HTTP clients built here swap the connection pool's network backend for one that
resolves the host once, checks every address it resolves to, and connects to a checked address
itself (TLS SNI, certificate checks and the Host header still use the name). A DNS answer that
changes between a check and the connect (rebinding) therefore cannot reach an unchecked
address, and every connection is checked, whichever request (first or redirected) opens it.
The httpx clients also re-check each request's URL in a request hook, which covers every
redirect hop with a clear refusal, and they cap redirects at ``MAX_REDIRECTS``. Proxies from
the environment are ignored (``trust_env=False``): a proxy would make the connect-time check
see the proxy instead of the target.

Why not a library: the SSRF-safe clients on PyPI (drawbridge, httpx-secure, egressweave) are
young single-maintainer packages, each wrapping one HTTP stack, while Backline needs the same
rule on two (httpx for sources and webhooks; httpx2, which the MCP SDK requires) plus a refusal
of its own service endpoints. httpcore's pluggable network backend makes the mechanism small.

Never widens the policy it is given, and never connects before the address is checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpcore2
import httpx
import httpx2

from core.egress import (
    ALLOW_SETTING,
    EgressDeniedError,
    EgressPolicy,
    IPAddress,
    ServiceEndpoint,
    UnresolvableHostError,
    address_class,
    denial_detail,
)

MAX_REDIRECTS = 5
SERVICE_ADDRESS_TTL_S = 60.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
_service_cache: dict[str, tuple[float, frozenset[IPAddress]]] = {}


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in resolver order (a literal address is itself).
    Raises ``OSError`` when the name does not resolve."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def _service_addresses(host: str, port: int) -> frozenset[IPAddress]:
    now = time.monotonic()
    hit = _service_cache.get(host)
    if hit is not None and now - hit[0] < SERVICE_ADDRESS_TTL_S:
        return hit[1]
    try:
        addresses = frozenset(resolve(host, port))
    except OSError:
        addresses = frozenset()
    _service_cache[host] = (now, addresses)
    return addresses


def _service_at(policy: EgressPolicy, ip: IPAddress, port: int) -> ServiceEndpoint | None:
    for service in policy.services_on(port):
        if service.listens_everywhere:
            # Bound to every interface: any local or intranet address on that port is it.
            if address_class(ip) is not None:
                return service
        elif ip in _service_addresses(service.host, port):
            return service
    return None


def check_addresses(
    policy: EgressPolicy, host: str, port: int, addresses: list[IPAddress]
) -> list[IPAddress]:
    """``addresses`` (what ``host`` resolved to) if every one is admitted, else
    ``EgressDeniedError`` naming the first refused address and its class."""
    if not addresses:
        raise UnresolvableHostError(f"{host} resolves to no address")
    for ip in addresses:
        klass = policy.refusal(host, ip)
        if klass is not None:
            raise EgressDeniedError(denial_detail(host, ip, klass), address_class=klass)
        service = _service_at(policy, ip, port)
        if service is not None:
            raise EgressDeniedError(
                f"{host}:{port} is {service.name}; Backline never sends a tenant's requests to "
                f"its own services, whatever {ALLOW_SETTING} admits",
                address_class="Backline service",
            )
    return addresses


def check_target(policy: EgressPolicy, host: str, port: int) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses if all are admitted (connect to these,
    not to the name). Raises ``EgressDeniedError`` or ``UnresolvableHostError``."""
    try:
        addresses = resolve(host, port)
    except OSError as exc:
        raise UnresolvableHostError(f"cannot resolve {host}: {exc}") from exc
    return check_addresses(policy, host, port, addresses)


def check_url(url: str, policy: EgressPolicy, *, allow_unresolved: bool = False) -> None:
    """Refuse ``url`` unless it is http(s) and its host resolves only to admitted addresses.

    For validation when a tenant registers a target (a 422 ``EgressDeniedError`` names the
    address class). ``allow_unresolved`` lets a name that does not resolve yet pass: the
    connect-time check still applies when it is used."""
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or port is None:
        raise EgressDeniedError(f"'{url}' is not an http:// or https:// URL with a host")
    try:
        check_target(policy, parts.hostname, port)
    except UnresolvableHostError:
        if not allow_unresolved:
            raise


async def acheck_url(url: str, policy: EgressPolicy, *, allow_unresolved: bool = False) -> None:
    """``check_url`` off the event loop (name resolution blocks)."""
    await asyncio.to_thread(check_url, url, policy, allow_unresolved=allow_unresolved)


# -- connect-time guard ----------------------------------------------------------------------


def _unix_refused() -> EgressDeniedError:
    return EgressDeniedError("Unix sockets are never reachable by tenant-aimed requests")


class _SyncGuard(httpcore.NetworkBackend):
    def __init__(self, policy: EgressPolicy, inner: httpcore.NetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = check_target(self._policy, host, port)
        except UnresolvableHostError as exc:
            raise httpcore.ConnectError(exc.detail) from exc
        failure: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        raise _unix_refused()

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncGuardBase:
    """The async connect-time check, shared by the httpcore and httpcore2 backends."""

    _connect_error: type[Exception]

    def __init__(self, policy: EgressPolicy, inner: Any) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> Any:
        try:
            async with asyncio.timeout(timeout):
                addresses = await asyncio.to_thread(check_target, self._policy, host, port)
        except UnresolvableHostError as exc:
            raise self._connect_error(exc.detail) from exc
        except TimeoutError as exc:
            raise self._connect_error(f"resolving {host} timed out") from exc
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options=socket_options
                )
            except self._connect_error as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> Any:
        raise _unix_refused()

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _AsyncGuard(_AsyncGuardBase, httpcore.AsyncNetworkBackend):
    _connect_error = httpcore.ConnectError


class _AsyncGuard2(_AsyncGuardBase, httpcore2.AsyncNetworkBackend):
    _connect_error = httpcore2.ConnectError


def _install(transport: Any, guard: type[Any], policy: EgressPolicy) -> None:
    # httpx builds its connection pool without a backend argument, so the guard replaces the
    # pool's backend; a library change that renames it fails here, loudly, not open.
    pool = transport._pool
    inner = getattr(pool, "_network_backend", None)
    if inner is None:
        raise RuntimeError("the HTTP library's connection pool has no network backend to guard")
    pool._network_backend = guard(policy, inner)


_FORBIDDEN = ("transport", "mounts", "proxy", "trust_env")


def _refuse_bypass(kwargs: dict[str, Any]) -> None:
    bypass = [k for k in _FORBIDDEN if k in kwargs]
    if bypass:
        raise TypeError(f"egress clients choose their own {', '.join(bypass)}")


def egress_client(policy: EgressPolicy, **kwargs: Any) -> httpx.Client:
    """A synchronous ``httpx.Client`` for tenant-aimed requests (URL sources, alert webhooks):
    every connection and every request (so every redirect hop) is checked against ``policy``.
    ``kwargs`` go to ``httpx.Client`` (not transport, mounts, proxy or trust_env)."""
    _refuse_bypass(kwargs)
    transport = httpx.HTTPTransport(trust_env=False)
    _install(transport, _SyncGuard, policy)

    def recheck(request: httpx.Request) -> None:
        try:
            check_url(str(request.url), policy)
        except UnresolvableHostError as exc:
            raise httpx.ConnectError(exc.detail, request=request) from exc

    hooks = dict(kwargs.pop("event_hooks", None) or {})
    hooks["request"] = [recheck, *hooks.get("request", [])]
    kwargs.setdefault("max_redirects", MAX_REDIRECTS)
    return httpx.Client(transport=transport, trust_env=False, event_hooks=hooks, **kwargs)


def async_egress_client(policy: EgressPolicy, **kwargs: Any) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` form of ``egress_client`` (e.g. alert webhook delivery)."""
    _refuse_bypass(kwargs)
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    _install(transport, _AsyncGuard, policy)

    async def recheck(request: httpx.Request) -> None:
        try:
            await acheck_url(str(request.url), policy)
        except UnresolvableHostError as exc:
            raise httpx.ConnectError(exc.detail, request=request) from exc

    hooks = dict(kwargs.pop("event_hooks", None) or {})
    hooks["request"] = [recheck, *hooks.get("request", [])]
    kwargs.setdefault("max_redirects", MAX_REDIRECTS)
    return httpx.AsyncClient(transport=transport, trust_env=False, event_hooks=hooks, **kwargs)


def mcp_http_client(policy: EgressPolicy, **kwargs: Any) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` (the MCP SDK's HTTP stack) whose every connection is checked
    against ``policy``. No request hook: the SDK follows redirects only within one origin, and
    a connection to any other origin is checked when it opens."""
    _refuse_bypass(kwargs)
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    _install(transport, _AsyncGuard2, policy)
    return httpx2.AsyncClient(transport=transport, trust_env=False, **kwargs)
