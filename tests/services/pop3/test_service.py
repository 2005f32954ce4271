"""``postroom serve pop3``: the service is registered and its listeners follow settings."""

from __future__ import annotations

from postroom.services.pop3.server import listener_specs
from postroom.services.supervisor import SERVICES, select


class FakeSettings(dict):
    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        return self[key]


def test_pop3_is_a_service() -> None:
    assert "pop3" in SERVICES and select(["pop3"]) == ["pop3"]


def test_listener_specs() -> None:
    settings = FakeSettings({
        "pop3.general.bind_all_ips": False, "pop3.bind": ["127.0.0.1"], "pop3.port": 110,
        "pop3.general.ssl_default_port": False, "pop3.general.alternate_port_enabled": True,
        "pop3.pop3s_port": 995, "pop3.general.ssl_alternate_port": True})
    specs = listener_specs(settings)
    assert [(s.kind, s.port, s.implicit_tls) for s in specs] == [
        ("pop3", 110, False), ("pop3s", 995, True)]
    settings["pop3.general.alternate_port_enabled"] = False
    settings["pop3.port"] = 0
    assert listener_specs(settings) == []
    settings["pop3.general.bind_all_ips"] = True
    settings["pop3.port"] = 110
    assert {s.host for s in listener_specs(settings)} == {"0.0.0.0", "::"}
