"""Network fixtures: ``dns_server``, a real authoritative DNS server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.dnsserver import DnsTestServer


@pytest.fixture
def dns_server() -> Iterator[DnsTestServer]:
    """An empty zone served on 127.0.0.1 (UDP and TCP); ``.nameserver`` is "127.0.0.1:PORT"."""
    with DnsTestServer() as server:
        yield server
