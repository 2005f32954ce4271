"""DKIM signing (manual 5.4.4): what a receiving verifier sees.

Every signature is checked with dkimpy's ``dkim.verify``, whose key lookup goes to the
real loopback DNS server (``tests/dnsserver.py``) through the production resolver,
serving the TXT record exactly as ``domain dkim create`` printed it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import dkim as dkimpy
import pytest

from postroom.connectors.smtp.outbound import dkim
from postroom.net.dns import Resolver
from postroom.store import Store
from postroom.store.directory import DirectoryError
from tests.dnsserver import DnsTestServer

DOMAIN = "example.com"
MESSAGE = (b"From: Bob <bob@example.com>\r\nTo: alice@remote.test\r\n"
           b"Subject: quarterly   report\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n"
           b"Message-ID: <1@example.com>\r\n\r\nHello Alice,\r\n\r\nthe figures.  \r\n\r\n")


@pytest.fixture
def dns_server() -> Iterator[DnsTestServer]:
    with DnsTestServer() as server:
        yield server


@pytest.fixture
def domain(store: Store) -> str:
    store.directory.create_postoffice("example")
    store.directory.create_domain(DOMAIN, "example")
    return DOMAIN


def publish(dns_server: DnsTestServer, selector: dkim.Selector) -> None:
    dns_server.remove(selector.record_name)
    dns_server.add(selector.record_name, "TXT", selector.record)


def dnsfunc(dns_server: DnsTestServer) -> Callable[..., bytes]:
    resolver = Resolver([dns_server.nameserver], timeout=3)

    def lookup(name: bytes, timeout: float = 5) -> bytes:
        answer = asyncio.run(resolver.resolve(name.decode().rstrip("."), "TXT"))
        return b"".join(b"".join(rr.strings) for rr in answer)

    return lookup


def verify(dns_server: DnsTestServer, message: bytes) -> bool:
    return bool(dkimpy.verify(message, dnsfunc=dnsfunc(dns_server)))


def tags(message: bytes) -> dict[str, str]:
    headers, _ = dkimpy.rfc822_parse(message)
    value = next(v for k, v in headers if k.lower() == b"dkim-signature")
    return {k.decode(): v.decode() for k, v in dkimpy.util.parse_tag_value(value).items()}


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
@pytest.mark.parametrize("canonicalization", ["relaxed/relaxed", "simple/simple",
                                              "relaxed/simple", "simple/relaxed"])
def test_signature_verifies_against_the_published_record(
        store: Store, domain: str, dns_server: DnsTestServer, algorithm: str,
        canonicalization: str) -> None:
    header, body = canonicalization.split("/")
    selector = dkim.create_selector(store, domain, "s2026", algorithm)
    store.directory.update_domain(domain, {"dkim.canonicalization.header": header,
                                           "dkim.canonicalization.body": body})
    publish(dns_server, selector)
    signed = dkim.sign_message(store, MESSAGE, domain)
    assert signed.endswith(MESSAGE) and signed.startswith(b"DKIM-Signature: ")
    assert verify(dns_server, signed)
    found = tags(signed)
    assert found["d"] == domain and found["s"] == "s2026"
    assert found["a"] == f"{algorithm}-sha256" and found["c"] == canonicalization
    assert "from" in found["h"].split(":") and "subject" in found["h"].split(":")
    tampered = signed.replace(b"the figures.", b"the figures!")
    assert not verify(dns_server, tampered)


def test_relaxed_survives_whitespace_changes_simple_does_not(
        store: Store, domain: str, dns_server: DnsTestServer) -> None:
    publish(dns_server, dkim.create_selector(store, domain, "sel"))
    signed = dkim.sign_message(store, MESSAGE, domain)
    reflowed = signed.replace(b"quarterly   report", b"quarterly report").replace(
        b"figures.  \r\n", b"figures.\r\n")
    assert verify(dns_server, reflowed)
    store.directory.update_domain(domain, {"dkim.canonicalization.header": "simple",
                                           "dkim.canonicalization.body": "simple"})
    signed = dkim.sign_message(store, MESSAGE, domain)
    assert not verify(dns_server, signed.replace(b"quarterly   report", b"quarterly report"))


def test_test_mode_publishes_t_y(store: Store, domain: str, dns_server: DnsTestServer) -> None:
    selector = dkim.create_selector(store, domain, "trial", test_mode=True)
    assert "t=y" in selector.record.split("; ")
    publish(dns_server, selector)
    assert verify(dns_server, dkim.sign_message(store, MESSAGE, domain))
    store.directory.update_domain(domain, {"dkim.test_mode": False})
    assert "t=y" not in dkim.list_selectors(store, domain)[0].record


def test_no_key_or_signing_off_leaves_the_message_unchanged(
        store: Store, domain: str, dns_server: DnsTestServer) -> None:
    assert dkim.sign_message(store, MESSAGE, domain) == MESSAGE            # no key yet
    assert dkim.sign_message(store, MESSAGE, "other.test") == MESSAGE      # not our domain
    assert dkim.sign_message(store, MESSAGE, "sub.example.com") == MESSAGE  # no parent's key
    dkim.create_selector(store, domain, "sel")
    assert dkim.sign_message(store, MESSAGE, domain) != MESSAGE
    store.directory.update_domain(domain, {"dkim.enabled": False})      # Sign outgoing: off
    assert dkim.sign_message(store, MESSAGE, domain) == MESSAGE
    store.directory.update_domain(domain, {"dkim.enabled": True,
                                           "dkim.selector_active": False})
    assert dkim.sign_message(store, MESSAGE, domain) == MESSAGE
    store.directory.update_domain(domain, {"dkim.selector_active": True})
    store.settings.set("dkim.enabled", False)                            # server switch
    assert dkim.sign_message(store, MESSAGE, domain) == MESSAGE
    store.settings.set("dkim.enabled", True)
    assert dkim.sign_message(store, MESSAGE, domain) != MESSAGE


def test_message_without_from_goes_out_unsigned(store: Store, domain: str) -> None:
    dkim.create_selector(store, domain, "sel")
    bare = b"Subject: no from\r\n\r\nbody\r\n"
    assert dkim.sign_message(store, bare, domain) == bare


def test_eight_bit_and_long_lines(store: Store, domain: str, dns_server: DnsTestServer) -> None:
    publish(dns_server, dkim.create_selector(store, domain, "sel"))
    message = ("From: Zoë <zoe@example.com>\r\nTo: a@remote.test\r\n"
               "Subject: Grüße aus Köln\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n"
               "Überall Umlaute: äöüß — ✓\r\n").encode() + b"x" * 5000 + b"\r\n"
    signed = dkim.sign_message(store, message, domain)
    assert verify(dns_server, signed)
    assert all(len(line) <= 78 for line in signed.split(b"\r\n\r\n")[0].split(b"\r\n")
               if not line.startswith(b"Subject"))


def test_bare_lf_message_keeps_its_line_ends(store: Store, domain: str,
                                             dns_server: DnsTestServer) -> None:
    publish(dns_server, dkim.create_selector(store, domain, "sel"))
    message = MESSAGE.replace(b"\r\n", b"\n")
    signed = dkim.sign_message(store, message, domain)
    assert b"\r" not in signed
    assert verify(dns_server, signed)


def test_body_length_limit(store: Store, domain: str, dns_server: DnsTestServer) -> None:
    publish(dns_server, dkim.create_selector(store, domain, "sel"))
    store.directory.update_domain(domain, {"dkim.body_length_limit.enabled": True,
                                           "dkim.body_length_limit": 10})
    signed = dkim.sign_message(store, MESSAGE, domain)
    assert tags(signed)["l"] == "10"
    assert verify(dns_server, signed)
    assert verify(dns_server, signed + b"appended by a list\r\n")  # the manual's warning
    assert not verify(dns_server, signed.replace(b"Hello", b"Jello"))  # inside the limit
    store.directory.update_domain(domain, {"dkim.body_length_limit": 0})  # whole body
    signed = dkim.sign_message(store, MESSAGE, domain)
    assert int(tags(signed)["l"]) > 10 and verify(dns_server, signed)


def test_user_identity(store: Store, domain: str, dns_server: DnsTestServer) -> None:
    publish(dns_server, dkim.create_selector(store, domain, "sel"))
    assert "i" not in tags(dkim.sign_message(store, MESSAGE, domain, identity="bob@example.com"))
    store.directory.update_domain(domain, {"dkim.include_user_identity": True})
    signed = dkim.sign_message(store, MESSAGE, domain, identity="bob@example.com")
    assert tags(signed)["i"] == "bob@example.com" and verify(dns_server, signed)
    other = dkim.sign_message(store, MESSAGE, domain, identity="eve@elsewhere.test")
    assert "i" not in tags(other)  # i= must be in the signing domain (RFC 6376 §3.5)


def test_rotation_signs_with_the_new_key_and_keeps_the_old_record(
        store: Store, domain: str, dns_server: DnsTestServer) -> None:
    old = dkim.create_selector(store, domain, "2025")
    publish(dns_server, old)
    before = dkim.sign_message(store, MESSAGE, domain)
    new = dkim.rotate_selector(store, domain, "2026", "ed25519")
    publish(dns_server, new)
    after = dkim.sign_message(store, MESSAGE, domain)   # the cache saw the change
    assert tags(after)["s"] == "2026" and tags(after)["a"] == "ed25519-sha256"
    assert verify(dns_server, before) and verify(dns_server, after)
    listed = {s.selector: s for s in dkim.list_selectors(store, domain)}
    assert listed["2026"].active and not listed["2025"].active
    assert listed["2025"].record == old.record
    dkim.delete_selector(store, domain, "2025")
    assert [s.selector for s in dkim.list_selectors(store, domain)] == ["2026"]
    dkim.delete_selector(store, domain, "2026")
    assert dkim.list_selectors(store, domain) == []
    assert dkim.sign_message(store, MESSAGE, domain) == MESSAGE


def test_private_key_is_sealed_in_the_store(store: Store, domain: str) -> None:
    dkim.create_selector(store, domain, "sel")
    dkim.rotate_selector(store, domain, "sel2")
    raw = store.conn.execute("SELECT options FROM domain WHERE name = ?", (domain,)).fetchone()
    assert "PRIVATE KEY" not in raw[0]
    blob = store.conn.execute("SELECT private_key FROM dkim_retired_selector").fetchone()[0]
    assert b"PRIVATE KEY" not in blob


@pytest.mark.parametrize(("call", "field"), [
    (lambda s: dkim.create_selector(s, "nowhere.test", "sel"), "domain"),
    (lambda s: dkim.create_selector(s, DOMAIN, "bad_selector!"), "selector"),
    (lambda s: dkim.create_selector(s, DOMAIN, "-x"), "selector"),
    (lambda s: dkim.create_selector(s, DOMAIN, "sel", "dsa"), "algorithm"),
    (lambda s: dkim.create_selector(s, DOMAIN, "sel", "rsa", 1000), "bits"),
    (lambda s: dkim.rotate_selector(s, DOMAIN, "sel"), "domain"),
    (lambda s: dkim.delete_selector(s, DOMAIN, "sel"), "selector"),
])
def test_bad_input_names_the_field_and_changes_nothing(
        store: Store, domain: str, call: Callable[[Store], object], field: str) -> None:
    with pytest.raises(DirectoryError) as caught:
        call(store)
    assert caught.value.field == field
    assert dkim.list_selectors(store, domain) == []
    assert store.directory.get_domain(domain).options["dkim.private_key"] == ""


def test_signing_is_much_faster_than_dkimpy_rsa(store: Store, domain: str) -> None:
    """RSA-2048 through cryptography against dkimpy's pure-Python RSA, same message and
    key, timed in the same test (a ratio holds on a loaded machine; rates do not)."""
    import time

    dkim.create_selector(store, domain, "sel")
    pem = store.directory.get_domain(domain).options["dkim.private_key"].encode()
    message = MESSAGE + b"y" * 5000 + b"\r\n"
    dkim.sign_message(store, message, domain)

    def rate(sign: Callable[[], object], count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            sign()
        return count / (time.perf_counter() - started)

    ours = rate(lambda: dkim.sign_message(store, message, domain), 100)
    theirs = rate(lambda: dkimpy.sign(message, b"sel", DOMAIN.encode(), pem), 10)
    assert ours > 3 * theirs, (ours, theirs)


SHAPES = [
    MESSAGE,                                              # trailing spaces: the slow path
    MESSAGE.replace(b"figures.  ", b"figures."),          # nothing to change: the fast path
    MESSAGE.replace(b"\r\n", b"\n"),                      # bare LF
    MESSAGE.replace(b"\r\n\r\nHello", b"\n\r\nHello"),    # mixed line ends at the boundary
    b"From: a@example.com\r\nSubject: x\r\n\r\n",          # empty body
    b"From: a@example.com\r\nSubject: x\r\n",              # no blank line at all
    b"From: a@example.com\r\n\r\n\r\n\r\n",                # only empty lines
    b"From: a@example.com\r\nX: y\r\n\r\nno final line end",
    b"From: a@example.com\r\n\tfolded\r\n\r\nbody\r\r\nwith a lone CR\rhere\r\n\r\n",
    b"From: a@example.com\r\n\r\nTabs\there\r\nand double  spaces\r\n",
    b"\r\nFrom: a@example.com\r\n\r\nheaderless\r\n",
]


@pytest.mark.parametrize("message", SHAPES)
@pytest.mark.parametrize("canonicalization", ["relaxed/relaxed", "simple/simple"])
def test_own_parsing_gives_dkimpys_bytes(message: bytes, canonicalization: str) -> None:
    """The signer's shortcuts (header block only, relaxed body untouched when nothing in
    it would change) hash exactly what dkimpy's own parser and canonicalization give."""
    policy = dkimpy.CanonicalizationPolicy.from_c_value(canonicalization.encode())
    try:
        expected = dkimpy.rfc822_parse(message)
    except dkimpy.MessageFormatError:
        with pytest.raises(dkimpy.MessageFormatError):
            dkim._parse(message)
        return
    headers, body = dkim._parse(message)
    assert (headers, body) == expected
    assert dkim._canonical_body(policy, body) == policy.canonicalize_body(expected[1])


def test_message_without_anything_to_canonicalize_verifies(
        store: Store, domain: str, dns_server: DnsTestServer) -> None:
    publish(dns_server, dkim.create_selector(store, domain, "sel"))
    plain = MESSAGE.replace(b"figures.  ", b"figures.") + b"line\r\n" * 100
    for message in (plain, plain.replace(b"\r\n", b"\n")):
        signed = dkim.sign_message(store, message, domain)
        assert verify(dns_server, signed)
        assert not verify(dns_server, signed.replace(b"the figures.", b"the figures!"))
