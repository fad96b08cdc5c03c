"""The egress guard against real local HTTP servers: every address class refused on the way
in, a redirect into loopback refused although the first server is admitted, the resolved
address pinned at connect time (DNS rebinding), an allow-listed intranet name reached by its
checked address, Backline's own services refused even when allow-listed, and the MCP client's
HTTP stack guarded the same way."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from connectors import egress
from connectors.egress import (
    async_egress_client,
    check_target,
    check_url,
    egress_client,
    mcp_http_client,
)
from connectors.sources.url import HttpSourceFetcher
from core.egress import (
    AllowList,
    EgressDeniedError,
    EgressPolicy,
    ServiceEndpoint,
    UnresolvableHostError,
)
from core.knowledge.ports import FetchFailedError, FetchRequest
from tests.knowledge_helpers import Page, SiteServer

SECRET = b"another organization's workflow history"
PUBLIC = ipaddress.ip_address("93.184.216.34")

CLASSES = {
    "127.0.0.1": "loopback",
    "::1": "loopback",
    "10.0.0.8": "private",
    "172.16.4.2": "private",
    "192.168.0.10": "private",
    "169.254.169.254": "link-local",
    "100.64.0.9": "shared (carrier-grade NAT",
    "fc00::1": "unique local",
    "224.0.0.1": "multicast",
    "0.0.0.0": "unspecified",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
}


def _url(host: str, port: int, path: str = "/") -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


@pytest.fixture
def secret_site() -> Iterator[SiteServer]:
    """What an attacker wants: a loopback-only service (like the Temporal UI's HTTP API)."""
    with SiteServer("127.0.0.2") as site:
        site.pages["/history"] = Page(SECRET, content_type="text/plain")
        yield site


@pytest.mark.parametrize(("host", "klass"), sorted(CLASSES.items()))
def test_each_address_class_is_refused_by_url_and_by_the_fetcher(host: str, klass: str) -> None:
    url = _url(host, 8233, "/api/v1/namespaces/default/workflows")
    with pytest.raises(EgressDeniedError, match="BACKLINE_EGRESS_ALLOW") as refused:
        check_url(url, EgressPolicy())
    assert klass in (refused.value.address_class or "")
    with pytest.raises(FetchFailedError) as failed:
        HttpSourceFetcher(EgressPolicy()).fetch(FetchRequest(url=url))
    assert failed.value.retryable is False and klass in str(failed.value)


def test_a_name_resolving_to_loopback_is_refused(secret_site: SiteServer) -> None:
    with pytest.raises(EgressDeniedError, match=r"localhost resolves to .*loopback"):
        check_url(f"http://localhost:{secret_site.port}/history", EgressPolicy())
    with pytest.raises(FetchFailedError, match="loopback"):
        HttpSourceFetcher(EgressPolicy()).fetch(
            FetchRequest(url=f"http://localhost:{secret_site.port}/history")
        )
    assert secret_site.log.requests == []


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        egress, "resolve", lambda host, port: [PUBLIC, ipaddress.ip_address("10.0.0.5")]
    )
    with pytest.raises(EgressDeniedError, match=r"10\.0\.0\.5, a private"):
        check_target(EgressPolicy(), "mixed.example", 443)


def test_a_redirect_from_an_admitted_server_into_loopback_is_refused(
    secret_site: SiteServer,
) -> None:
    admitted = EgressPolicy(allow=AllowList.parse("127.0.0.1"))
    with SiteServer("127.0.0.1") as site:
        site.redirects["/docs"] = secret_site.url("/history")
        site.pages["/ok"] = Page(b"# Opening hours", content_type="text/markdown")
        assert HttpSourceFetcher(admitted).fetch(FetchRequest(url=site.url("/ok"))).content
        with pytest.raises(FetchFailedError) as failed:
            HttpSourceFetcher(admitted).fetch(FetchRequest(url=site.url("/docs")))
        assert failed.value.retryable is False
        assert "127.0.0.2 is a loopback address" in str(failed.value)
        assert [r["path"] for r in site.log.requests] == ["/ok", "/docs"]
        assert secret_site.log.requests == []
        # The same redirect is followed when the operator admits its target too: the refusal
        # above comes from the re-check, not from an unreachable server.
        wider = EgressPolicy(allow=AllowList.parse("127.0.0.0/8"))
        result = HttpSourceFetcher(wider).fetch(FetchRequest(url=site.url("/docs")))
    assert result.content == SECRET


def test_redirects_are_capped() -> None:
    admitted = EgressPolicy(allow=AllowList.parse("127.0.0.1"))
    with SiteServer() as site:
        site.redirects["/loop"] = site.url("/loop")
        with pytest.raises(FetchFailedError, match="redirects") as failed:
            HttpSourceFetcher(admitted).fetch(FetchRequest(url=site.url("/loop")))
    assert failed.value.retryable is False
    assert len(site.log.requests) == egress.MAX_REDIRECTS + 1


def test_the_connect_uses_the_checked_address_so_rebinding_is_refused(
    secret_site: SiteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([[PUBLIC], [ipaddress.ip_address("127.0.0.2")]])
    monkeypatch.setattr(egress, "resolve", lambda host, port: next(answers))
    with egress_client(EgressPolicy()) as client, pytest.raises(EgressDeniedError) as refused:
        # The request hook sees the public answer; the connect resolves again and is refused.
        client.get(f"http://rebind.example:{secret_site.port}/history")
    assert refused.value.address_class == "loopback"
    assert secret_site.log.requests == []


def test_an_allow_listed_intranet_name_is_reached_at_its_checked_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolved: list[str] = []

    def fake_resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        resolved.append(host)
        if host == "wiki.intranet.example":
            return [ipaddress.ip_address("127.0.0.1")]
        raise OSError(f"no such host {host}")

    monkeypatch.setattr(egress, "resolve", fake_resolve)
    intranet = EgressPolicy(allow=AllowList.parse("*.intranet.example"))
    with SiteServer() as site:
        site.pages["/faq"] = Page(b"# FAQ", content_type="text/markdown")
        url = f"http://wiki.intranet.example:{site.port}/faq"
        result = HttpSourceFetcher(intranet).fetch(FetchRequest(url=url))
        with pytest.raises(FetchFailedError, match="loopback"):
            HttpSourceFetcher(EgressPolicy()).fetch(FetchRequest(url=url))
    assert result.content == b"# FAQ"
    # Connected to the checked address; the name still travels in the Host header.
    assert site.log.requests[0]["host"] == f"wiki.intranet.example:{site.port}"
    with pytest.raises(UnresolvableHostError):
        check_url("http://gone.intranet.example/", intranet)
    check_url("http://gone.intranet.example/", intranet, allow_unresolved=True)


def test_backline_services_stay_refused_when_the_allow_list_admits_their_address() -> None:
    with SiteServer() as site:
        site.pages["/api/v1/workflows"] = Page(SECRET, content_type="text/plain")
        policy = EgressPolicy(
            allow=AllowList.parse("127.0.0.1"),
            services=(ServiceEndpoint("the Temporal UI", "localhost", site.port),),
        )
        with pytest.raises(FetchFailedError, match="is the Temporal UI"):
            HttpSourceFetcher(policy).fetch(FetchRequest(url=site.url("/api/v1/workflows")))
        everywhere = EgressPolicy(
            allow=AllowList.parse("127.0.0.1"),
            services=(ServiceEndpoint("the Backline API", "0.0.0.0", site.port),),
        )
        with pytest.raises(EgressDeniedError, match="the Backline API"):
            check_url(site.url("/"), everywhere)
    assert site.log.requests == []


def test_egress_clients_refuse_a_bypass() -> None:
    for key in ("transport", "mounts", "proxy", "trust_env"):
        with pytest.raises(TypeError, match=key):
            egress_client(EgressPolicy(), **{key: None})


async def test_the_async_clients_are_guarded_at_connect_time(secret_site: SiteServer) -> None:
    url = secret_site.url("/history")
    async with async_egress_client(EgressPolicy()) as client:
        with pytest.raises(EgressDeniedError, match="loopback"):
            await client.get(url)
    # The MCP SDK's stack has no request hook: the connect-time check alone refuses.
    async with mcp_http_client(EgressPolicy()) as mcp_http:
        with pytest.raises(EgressDeniedError, match="loopback"):
            await mcp_http.get(url)
    async with mcp_http_client(EgressPolicy(allow=AllowList.parse("127.0.0.2"))) as mcp_http:
        assert (await mcp_http.get(url)).content == SECRET
    async with async_egress_client(EgressPolicy(allow=AllowList.parse("127.0.0.2"))) as c:
        assert (await c.get(url)).content == SECRET
    assert len(secret_site.log.requests) == 2
