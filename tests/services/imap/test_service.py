"""``postroom serve imap``: registration, listeners from settings, access lists, logs,
connection limits."""

from __future__ import annotations

import time

from postroom.services.imap.server import listener_specs
from postroom.services.supervisor import SERVICES, select
from tests.services.imap.conftest import ImapServer, RawImap


class FakeSettings(dict):
    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        return self[key]


def test_imap_is_a_service() -> None:
    assert "imap" in SERVICES and select(["imap"]) == ["imap"]


def test_listener_specs() -> None:
    settings = FakeSettings({
        "imap.general.bind_all_ips": False, "imap.bind": ["127.0.0.1"], "imap.port": 143,
        "imap.general.ssl_default_port": False, "imap.general.alternate_port_enabled": True,
        "imap.imaps_port": 993, "imap.general.ssl_alternate_port": True})
    assert [(s.kind, s.port, s.implicit_tls) for s in listener_specs(settings)] == [
        ("imap", 143, False), ("imaps", 993, True)]
    settings["imap.general.alternate_port_enabled"] = False
    settings["imap.port"] = 0
    assert listener_specs(settings) == []


def test_access_list_and_connection_limit(imap_server: ImapServer) -> None:
    imap_server.set("imap.general.access_control_list", ["127.0.0.0/8"])
    raw = RawImap(imap_server.host, imap_server.port)
    assert raw.greeting == b"* BYE [UNAVAILABLE] access denied"
    assert raw.closed_by_server()
    imap_server.set("imap.general.access_control_list", [])
    imap_server.set("imap.general.client_connections_limited", "limited")
    imap_server.set("imap.general.max_client_connections", 1)
    first = RawImap(imap_server.host, imap_server.port)
    assert first.greeting.startswith(b"* OK [CAPABILITY ")
    second = RawImap(imap_server.host, imap_server.port)
    assert second.greeting == b"* BYE [UNAVAILABLE] too many connections, try again later"
    first.close()
    second.close()


def test_logs_mask_passwords(imap_server: ImapServer, bob: RawImap) -> None:
    bob.command("SELECT INBOX")
    bob.command("LOGOUT")
    folder = imap_server.home / "logs" / "IMAP"
    deadline = time.monotonic() + 5
    while True:
        text = "".join(p.read_text() for p in folder.glob("*") if p.is_file()) \
            if folder.exists() else ""
        if ("SELECT" in text and "LOGOUT" in text) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "SELECT" in text and "INBOX" in text and "bob@example" in text
    assert "Correct-Horse" not in text
