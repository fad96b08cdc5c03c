"""Egress rules: which network addresses a tenant may aim Backline's server-side requests at.

A tenant chooses the target of several requests Backline makes on its behalf (knowledge URL
sources, HTTP MCP servers, alert webhooks). Without a rule, such a request reaches whatever sits
next to Backline: the Temporal UI's HTTP API (every organization's workflow history), the
database, the cloud metadata endpoint. So every such target must be a public address, unless
the operator admits an intranet host or network with ``BACKLINE_EGRESS_ALLOW``; Backline's own
service endpoints (API, dashboard, Temporal, database, Weaviate) stay refused even then.

This module holds the pure rules (address classes, the allow-list, the policy built from
settings). It never resolves a name or opens a socket: ``connectors.egress`` does that, checking
the resolved addresses at connect time. Tenants never widen the policy: it is built from
operator settings only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.errors import InvalidInputError

if TYPE_CHECKING:
    from core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "BACKLINE_EGRESS_ALLOW"

# Named before Python's broader predicates so a refusal names the precise class.
_NAMED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/8"), "unspecified ('this network')"),
    (ipaddress.ip_network("10.0.0.0/8"), "private (RFC 1918)"),
    (ipaddress.ip_network("172.16.0.0/12"), "private (RFC 1918)"),
    (ipaddress.ip_network("192.168.0.0/16"), "private (RFC 1918)"),
    (ipaddress.ip_network("100.64.0.0/10"), "shared (carrier-grade NAT, RFC 6598)"),
    (ipaddress.ip_network("fc00::/7"), "private (unique local, RFC 4193)"),
    (ipaddress.ip_network("fec0::/10"), "site-local"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressDeniedError(InvalidInputError):
    """A tenant-chosen target is an address Backline does not reach on a tenant's behalf."""

    def __init__(self, detail: str, *, address_class: str | None = None) -> None:
        super().__init__(detail)
        self.address_class = address_class


class UnresolvableHostError(InvalidInputError):
    """A tenant-chosen target's host name does not resolve."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_class(ip: IPAddress) -> str | None:
    """The class that makes ``ip`` unreachable for tenants (``"loopback"``, ``"private (RFC
    1918)"``...), or None for a public, globally routable address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, inner = embedded
            inner_class = address_class(inner)
            return f"{form} {inner_class}" if inner_class else None
    for network, name in _NAMED_NETWORKS:
        if ip.version == network.version and ip in network:
            return name
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "special-purpose (not globally routable)"
    return None


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class AllowList:
    """Operator-admitted targets: networks (CIDR or single address), exact host names, and
    ``*.domain`` suffixes."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """Parse ``"10.1.2.0/24, wiki.corp.example, *.intranet.example"``; a malformed entry
        raises ``ValueError`` naming it."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for raw in text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry or " " in entry:
                raise ValueError(
                    f"{ALLOW_SETTING}: '{entry}' is neither an address, a CIDR network nor a "
                    "host name (ports and URLs are not accepted)"
                )
            if entry.startswith("*."):
                suffixes.append("." + _normal_host(entry[2:]))
            else:
                hosts.add(_normal_host(entry))
        return cls(tuple(networks), frozenset(hosts), tuple(suffixes))

    def admits_host(self, host: str) -> bool:
        name = _normal_host(host)
        return name in self.hosts or any(name.endswith(s) for s in self.suffixes)

    def admits_address(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts or self.suffixes)


@dataclass(frozen=True)
class ServiceEndpoint:
    """One of Backline's own listeners, refused even when the allow-list admits its address."""

    name: str
    host: str
    port: int

    @property
    def listens_everywhere(self) -> bool:
        return _normal_host(self.host) in ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class EgressPolicy:
    """Built by composition roots from operator settings (``egress_policy``); the default
    refuses every non-public address."""

    allow: AllowList = field(default_factory=AllowList)
    services: tuple[ServiceEndpoint, ...] = ()

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why ``ip`` (one address ``host`` resolved to) may not be reached, or None. Service
        endpoints are matched separately, by port (``services_on``)."""
        klass = address_class(ip)
        if klass is None:
            return None
        if self.allow.admits_host(host) or self.allow.admits_address(ip):
            return None
        return klass

    def services_on(self, port: int) -> list[ServiceEndpoint]:
        return [s for s in self.services if s.port == port]


def _endpoint(
    name: str, url_or_host: str | None, default_port: int | None
) -> ServiceEndpoint | None:
    if not url_or_host:
        return None
    text = url_or_host if "://" in url_or_host else f"//{url_or_host}"
    try:
        parts = urlsplit(text)
        port = parts.port or default_port or _SCHEME_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return ServiceEndpoint(name, parts.hostname, port)


_SCHEME_PORTS = {"http": 80, "https": 443}
_DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306}


def service_endpoints(settings: Settings) -> tuple[ServiceEndpoint, ...]:
    """Backline's own listeners as the settings describe them."""
    scheme = (settings.resolved_database_url.split(":", 1)[0]).split("+", 1)[0]
    temporal = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
    temporal_host = _endpoint("Temporal", temporal, settings.temporal_port)
    weaviate = _endpoint("Weaviate", settings.weaviate_url, 8080)
    candidates: Iterable[ServiceEndpoint | None] = (
        ServiceEndpoint("the Backline API", settings.api_host, settings.api_port),
        _endpoint("the Backline API (public URL)", settings.public_url, None),
        ServiceEndpoint("the dashboard", settings.dashboard_host, settings.dashboard_port),
        temporal_host,
        ServiceEndpoint("the Temporal UI", temporal_host.host, settings.temporal_ui_port)
        if temporal_host
        else None,
        _endpoint("the database", settings.resolved_database_url, _DB_PORTS.get(scheme)),
        weaviate,
        ServiceEndpoint("Weaviate (gRPC)", weaviate.host, 50051) if weaviate else None,
    )
    return tuple(dict.fromkeys(c for c in candidates if c is not None))


def egress_policy(settings: Settings) -> EgressPolicy:
    """The policy for every tenant-aimed request, from operator settings only."""
    return EgressPolicy(
        allow=AllowList.parse(settings.egress_allow), services=service_endpoints(settings)
    )


def denial_detail(target: str, ip: IPAddress | None, klass: str) -> str:
    """The message a refusal carries: what was refused, why, and how an operator admits it."""
    where = (
        f"{target} resolves to {ip}, " if ip is not None and str(ip) != target else f"{target} is "
    )
    return (
        f"{where}{'an' if klass[0].lower() in 'aeiou' else 'a'} {klass} address; Backline does not "
        "reach loopback, private, link-local or other non-public addresses (nor its own "
        "services) on a tenant's behalf. Use a public address, or ask the operator to admit "
        f"this intranet host with {ALLOW_SETTING} (comma-separated hosts or CIDR networks)"
    )
