"""The egress rules: which addresses tenant-aimed requests may reach, the operator allow-list,
and Backline's own service endpoints taken from settings."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.egress import AllowList, EgressPolicy, address_class, egress_policy
from core.settings import Settings

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "10.20.30.40": "private (RFC 1918)",
    "172.16.0.1": "private (RFC 1918)",
    "172.31.255.254": "private (RFC 1918)",
    "192.168.1.1": "private (RFC 1918)",
    "169.254.169.254": "link-local",
    "fe80::1": "link-local",
    "100.64.0.1": "shared (carrier-grade NAT, RFC 6598)",
    "100.127.255.254": "shared (carrier-grade NAT, RFC 6598)",
    "fc00::1": "private (unique local, RFC 4193)",
    "fd12:3456::1": "private (unique local, RFC 4193)",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified ('this network')",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:10.0.0.1": "IPv4-mapped private (RFC 1918)",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::127.0.0.1": "IPv4-compatible loopback",
    "2002:7f00:1::": "6to4 loopback",
    "64:ff9b::a00:1": "NAT64 private (RFC 1918)",
    "192.0.2.10": "special-purpose (not globally routable)",
}


@pytest.mark.parametrize(("address", "klass"), sorted(REFUSED.items()))
def test_every_non_public_address_class_is_refused_by_name(address: str, klass: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_class(ip) == klass
    assert EgressPolicy().refusal(address, ip) == klass


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"]
)
def test_public_addresses_are_admitted(address: str) -> None:
    ip = ipaddress.ip_address(address)
    assert address_class(ip) is None
    assert EgressPolicy().refusal(address, ip) is None


def test_the_allow_list_admits_networks_hosts_and_suffixes_only() -> None:
    allow = AllowList.parse(" 10.1.2.0/24, wiki.corp.example ,*.intranet.example, 127.0.0.1,")
    policy = EgressPolicy(allow=allow)
    ten = ipaddress.ip_address("10.1.2.3")
    assert policy.refusal("10.1.2.3", ten) is None
    assert policy.refusal("10.1.3.3", ipaddress.ip_address("10.1.3.3")) == "private (RFC 1918)"
    assert policy.refusal("127.0.0.1", ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal("127.0.0.2", ipaddress.ip_address("127.0.0.2")) == "loopback"
    # A host name admits whatever it resolves to; a suffix admits sub-domains, not the apex.
    assert policy.refusal("WIKI.corp.example.", ipaddress.ip_address("192.168.9.9")) is None
    assert policy.refusal("a.intranet.example", ipaddress.ip_address("172.16.0.5")) is None
    assert policy.refusal("intranet.example", ipaddress.ip_address("172.16.0.5")) is not None
    assert policy.refusal("other.example", ipaddress.ip_address("192.168.9.9")) is not None


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://wiki.corp", "wiki.corp:8080", "a b"])
def test_a_malformed_allow_list_fails_at_startup_naming_the_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="BACKLINE_EGRESS_ALLOW"):
        AllowList.parse(entry)
    with pytest.raises(ValidationError, match="BACKLINE_EGRESS_ALLOW"):
        Settings(egress_allow=f"10.0.0.1, {entry}")


def test_the_policy_knows_backlines_own_services_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://u:p@db.internal/backline",
        temporal_address="temporal.internal:7233",
        weaviate_url="http://weaviate.internal:8080",
        public_url="https://backline.example.com",
        api_host="0.0.0.0",
        api_port=8000,
        egress_allow="10.0.0.0/8",
    )
    policy = egress_policy(settings)
    where = {(s.host, s.port): s.name for s in policy.services}
    assert where[("0.0.0.0", 8000)] == "the Backline API"
    assert where[("backline.example.com", 443)] == "the Backline API (public URL)"
    assert where[("db.internal", 5432)] == "the database"
    assert where[("temporal.internal", 7233)] == "Temporal"
    assert where[("temporal.internal", settings.temporal_ui_port)] == "the Temporal UI"
    assert where[("weaviate.internal", 8080)] == "Weaviate"
    assert where[("127.0.0.1", settings.dashboard_port)] == "the dashboard"
    assert [s.name for s in policy.services_on(5432)] == ["the database"]
    assert policy.allow.admits_address(ipaddress.ip_address("10.9.9.9"))
    # The default settings admit nothing beyond public addresses.
    assert not egress_policy(Settings(data_dir=tmp_path)).allow
