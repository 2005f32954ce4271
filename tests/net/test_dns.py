"""The resolver against a real DNS server on loopback: answers, failures, deadlines, cache."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from postroom.net.dns import (
    DnsInputError,
    DnsTemporaryError,
    DnsTimeout,
    MxHost,
    NoData,
    NxDomain,
    Resolver,
    parse_nameserver,
)
from postroom.store.store import Store
from tests.dnsserver import DnsTestServer


def resolver(server: DnsTestServer, **options: float) -> Resolver:
    return Resolver([server.nameserver], **options)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_mx_hosts_sorted_by_preference(dns_server: DnsTestServer) -> None:
    dns_server.add("example.com", "MX", "30 backup.example.net")
    dns_server.add("example.com", "MX", "10 MX1.Example.com.")
    dns_server.add("example.com", "MX", "20 mx2.example.com")
    hosts = await resolver(dns_server).mx_hosts("Example.COM")
    assert list(hosts) == [
        MxHost(10, "mx1.example.com"),
        MxHost(20, "mx2.example.com"),
        MxHost(30, "backup.example.net"),
    ]
    assert not hosts.implicit and not hosts.null_mx


@pytest.mark.asyncio
async def test_equal_preferences_are_all_returned(dns_server: DnsTestServer) -> None:
    for n in range(4):
        dns_server.add("spread.example", "MX", f"10 mx{n}.spread.example")
    dns_server.add("spread.example", "MX", "5 first.spread.example")
    hosts = await resolver(dns_server).mx_hosts("spread.example")
    assert hosts[0] == MxHost(5, "first.spread.example")
    assert sorted(h.host for h in hosts.hosts[1:]) == [f"mx{n}.spread.example" for n in range(4)]


@pytest.mark.asyncio
async def test_implicit_mx_is_the_domain_itself(dns_server: DnsTestServer) -> None:
    dns_server.add("plain.example", "A", "192.0.2.20")
    dns_server.add("v6only.example", "AAAA", "2001:db8::20")
    dns_server.add("txtonly.example", "TXT", "hello")
    dns = resolver(dns_server)
    hosts = await dns.mx_hosts("plain.example")
    assert list(hosts) == [MxHost(0, "plain.example")] and hosts.implicit
    assert list(await dns.mx_hosts("v6only.example")) == [MxHost(0, "v6only.example")]
    nowhere = await dns.mx_hosts("txtonly.example")
    assert list(nowhere) == [] and nowhere.implicit
    assert await dns.domain_exists("plain.example")
    assert not await dns.domain_exists("txtonly.example")


@pytest.mark.asyncio
async def test_null_mx(dns_server: DnsTestServer) -> None:
    dns_server.add("nomail.example", "MX", "0 .")
    dns_server.add("nomail.example", "A", "192.0.2.30")
    dns = resolver(dns_server)
    hosts = await dns.mx_hosts("nomail.example")
    assert hosts.null_mx and list(hosts) == [] and not hosts.implicit
    assert not await dns.domain_exists("nomail.example")


@pytest.mark.asyncio
async def test_nxdomain_nodata_and_temporary_failures_differ(dns_server: DnsTestServer) -> None:
    dns_server.add("exists.example", "A", "192.0.2.1")
    dns_server.fail("broken.example", "SERVFAIL")
    dns_server.fail("refused.example", "REFUSED")
    dns = resolver(dns_server, timeout=2.0)

    with pytest.raises(NxDomain) as nx:
        await dns.mx_hosts("missing.example")
    assert not nx.value.temporary
    assert not await dns.domain_exists("missing.example")

    with pytest.raises(NoData) as nodata:
        await dns.resolve("exists.example", "MX")
    assert not nodata.value.temporary
    assert await dns.txt("exists.example") == []

    for name in ("broken.example", "refused.example"):
        with pytest.raises(DnsTemporaryError) as temporary:
            await dns.mx_hosts(name)
        assert temporary.value.temporary
        assert not isinstance(temporary.value, DnsTimeout)
        with pytest.raises(DnsTemporaryError):
            await dns.domain_exists(name)
        with pytest.raises(DnsTemporaryError):
            await dns.addresses(name)


@pytest.mark.asyncio
async def test_hard_deadline_on_a_silent_server(dns_server: DnsTestServer) -> None:
    dns_server.delay("slow.example", 3.0)
    dns_server.add("slow.example", "A", "192.0.2.3")
    dns = resolver(dns_server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DnsTimeout) as error:
        await dns.addresses("slow.example")
    elapsed = time.monotonic() - started
    assert error.value.temporary
    assert elapsed < 1.0, f"deadline of 0.5 s took {elapsed:.2f} s"


@pytest.mark.asyncio
async def test_deadline_holds_even_for_servers_that_never_answer() -> None:
    # A loopback socket that takes every query and answers none (tests stay on loopback).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        dns = Resolver([f"127.0.0.1:{silent.getsockname()[1]}"], timeout=0.3)
        started = time.monotonic()
        with pytest.raises(DnsTemporaryError):
            await dns.mx_hosts("example.com")
        assert time.monotonic() - started < 0.8


@pytest.mark.asyncio
async def test_addresses_both_families(dns_server: DnsTestServer) -> None:
    dns_server.add("dual.example", "A", "192.0.2.40")
    dns_server.add("dual.example", "AAAA", "2001:db8::40")
    dns_server.add("alias.example", "CNAME", "dual.example")
    dns = resolver(dns_server)
    assert await dns.addresses("dual.example") == ["192.0.2.40", "2001:db8::40"]
    assert await dns.addresses("alias.example") == ["192.0.2.40", "2001:db8::40"]
    with pytest.raises(NxDomain):
        await dns.addresses("nothing.example")


@pytest.mark.asyncio
async def test_ptr_ipv4_and_ipv6(dns_server: DnsTestServer) -> None:
    dns_server.add_ptr("192.0.2.7", "client7.example.net")
    dns_server.add_ptr("2001:db8::1", "v6.example.net")
    dns_server.add(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        "PTR",
        "second.example.net",
    )
    dns = resolver(dns_server)
    assert await dns.ptr("192.0.2.7") == ["client7.example.net"]
    assert sorted(await dns.ptr("2001:db8::1")) == ["second.example.net", "v6.example.net"]
    with pytest.raises(NxDomain):
        await dns.ptr("192.0.2.8")
    with pytest.raises(DnsInputError) as error:
        await dns.ptr("not-an-ip")
    assert error.value.field == "ip"


@pytest.mark.asyncio
async def test_long_txt_is_joined_and_fetched_over_tcp(dns_server: DnsTestServer) -> None:
    spf = "v=spf1 " + " ".join(f"ip4:198.51.100.{n}" for n in range(80)) + " -all"
    assert len(spf) > 1232  # past the EDNS payload: the UDP answer is truncated
    dns_server.add("example.org", "TXT", spf)
    dns_server.add("example.org", "TXT", ["google-site-", "verification=abc"])
    texts = await resolver(dns_server).txt("example.org")
    assert sorted(texts) == sorted([spf, "google-site-verification=abc"])
    transports = {q[2] for q in dns_server.queries if q[0] == "example.org." and q[1] == "TXT"}
    assert transports == {"udp", "tcp"}


@pytest.mark.asyncio
async def test_dnsbl_lookup(dns_server: DnsTestServer) -> None:
    dns_server.add("2.0.0.127.zen.example", "A", "127.0.0.2")
    dns_server.add("2.0.0.127.zen.example", "A", "127.0.0.4")
    dns_server.add("2.0.0.127.zen.example", "TXT", "Listed: see https://zen.example/127.0.0.2")
    dns_server.add("9.2.0.192.zen.example", "A", "127.255.255.254")  # "query refused"
    v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example"
    dns_server.add(v6, "A", "127.0.0.3")
    dns = resolver(dns_server)

    listed = await dns.dnsbl_listed("127.0.0.2", "zen.example")
    assert listed.listed
    assert sorted(listed.codes) == ["127.0.0.2", "127.0.0.4"]
    assert listed.reason == "Listed: see https://zen.example/127.0.0.2"

    clean = await dns.dnsbl_listed("192.0.2.1", "zen.example")
    assert not clean.listed and clean.codes == () and clean.reason is None

    refused = await dns.dnsbl_listed("192.0.2.9", "zen.example")
    assert not refused.listed and refused.codes == ("127.255.255.254",)

    assert (await dns.dnsbl_listed("2001:db8::1", "zen.example")).codes == ("127.0.0.3",)

    dns_server.fail("5.0.0.127.zen.example", "SERVFAIL")
    with pytest.raises(DnsTemporaryError):
        await dns.dnsbl_listed("127.0.0.5", "zen.example")


@pytest.mark.asyncio
async def test_answers_are_cached(dns_server: DnsTestServer) -> None:
    dns_server.add("cached.example", "MX", "10 mx.cached.example")
    dns = resolver(dns_server)
    for _ in range(3):
        assert [h.host for h in await dns.mx_hosts("cached.example")] == ["mx.cached.example"]
    assert dns_server.count("cached.example", "MX") == 1
    for _ in range(3):
        with pytest.raises(NxDomain):
            await dns.txt("gone.example")
    assert dns_server.count("gone.example", "TXT") == 1  # negative answers too (RFC 2308)

    uncached = resolver(dns_server, cache_size=0)
    await uncached.mx_hosts("cached.example")
    await uncached.mx_hosts("cached.example")
    assert dns_server.count("cached.example", "MX") == 3


@pytest.mark.asyncio
async def test_many_concurrent_lookups(dns_server: DnsTestServer) -> None:
    for n in range(50):
        dns_server.add(f"d{n}.example", "MX", f"10 mx.d{n}.example")
    dns = resolver(dns_server)
    results = await asyncio.gather(*(dns.mx_hosts(f"d{n}.example") for n in range(50)))
    assert [r[0].host for r in results] == [f"mx.d{n}.example" for n in range(50)]


@pytest.mark.asyncio
async def test_idn_domains_are_encoded(dns_server: DnsTestServer) -> None:
    dns_server.add("xn--bcher-kva.example", "MX", "10 mx.xn--bcher-kva.example")
    hosts = await resolver(dns_server).mx_hosts("bücher.example")
    assert [h.host for h in hosts] == ["mx.xn--bcher-kva.example"]


@pytest.mark.parametrize("bad", ["", "a..b", "exa mple.com", "x" * 64 + ".com", "a<b>.com"])
@pytest.mark.asyncio
async def test_bad_domains_are_refused_before_any_query(
    dns_server: DnsTestServer, bad: str
) -> None:
    with pytest.raises(DnsInputError) as error:
        await resolver(dns_server).mx_hosts(bad)
    assert error.value.field == "domain"
    assert dns_server.queries == []


def test_nameserver_setting_forms() -> None:
    assert parse_nameserver("192.0.2.1") == ("192.0.2.1", 53)
    assert parse_nameserver("192.0.2.1:5353") == ("192.0.2.1", 5353)
    assert parse_nameserver("[2001:db8::1]:5353") == ("2001:db8::1", 5353)
    assert parse_nameserver("[2001:db8::1]") == ("2001:db8::1", 53)
    assert parse_nameserver("2001:db8::1") == ("2001:db8::1", 53)
    for bad in [
        "dns.example",
        "192.0.2.1:0",
        "192.0.2.1:99999",
        "[::1]x",
        "192.0.2.1:abc",
        "192.0.2.1:",
        "[::1]:",
    ]:
        with pytest.raises(DnsInputError) as error:
            parse_nameserver(bad)
        assert error.value.field == "dns.nameservers"
    assert Resolver("192.0.2.1, 192.0.2.2:5300").nameservers == ("192.0.2.1:53", "192.0.2.2:5300")
    assert Resolver().nameservers == ()  # the system resolver


@pytest.mark.asyncio
async def test_resolver_from_the_servers_setting(store: Store, dns_server: DnsTestServer) -> None:
    dns_server.add("example.net", "MX", "10 mx.example.net")
    store.settings.set("dns.nameservers", [dns_server.nameserver])
    dns = Resolver.from_settings(store.settings, timeout=2.0)
    assert dns.nameservers == (dns_server.nameserver,)
    assert [h.host for h in await dns.mx_hosts("example.net")] == ["mx.example.net"]
