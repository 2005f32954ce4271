"""Debug log: time, connection and words, one file per day, credentials hidden."""

from __future__ import annotations

from pathlib import Path

from postroom.logs import DebugLog, ServiceLogs
from postroom.store.store import Store
from tests.logs.conftest import FakeClock


def test_lines_carry_time_and_connection(tmp_path: Path, clock: FakeClock) -> None:
    log = DebugLog("SMTP", tmp_path, clock=clock)
    log.write("Service started")
    log.write("Relay denied for 192.0.2.7:\nsender not authenticated", connection_id=17)
    clock.advance(seconds=5)
    log.write("MX lookup for example.com failed", connection_id=18)
    log.close()
    assert (tmp_path / "SMTP-Debug-260125.log").read_text().splitlines() == [
        "01/25/26 23:59:58\t-\tService started",
        "01/25/26 23:59:58\t17\tRelay denied for 192.0.2.7:",
        "01/25/26 23:59:58\t17\tsender not authenticated",
    ]
    assert (tmp_path / "SMTP-Debug-260126.log").read_text() == (
        "01/26/26 00:00:03\t18\tMX lookup for example.com failed\n"
    )


def test_transcript_of_a_session_hides_sasl(tmp_path: Path, clock: FakeClock) -> None:
    log = DebugLog("SMTP", tmp_path, clock=clock)
    masker = log.session_masker()
    dialogue = [
        ("EHLO client.example", True),
        ("250-AUTH LOGIN PLAIN CRAM-MD5", False),
        ("AUTH LOGIN", True),
        ("334 VXNlcm5hbWU6", False),
        ("Ym9i", True),
        ("334 UGFzc3dvcmQ6", False),
        ("aHVudGVyMg==", True),
        ("235 Authentication successful", False),
        ("MAIL FROM:<bob@example.com>", True),
    ]
    for line, from_client in dialogue:
        log.write(line, connection_id=5, masker=masker, from_client=from_client)
    log.write("PASS hunter2", connection_id=6)  # without a masker: single-line forms
    log.close()
    text = (tmp_path / "SMTP-Debug-260125.log").read_text()
    assert "Ym9i" not in text and "aHVudGVyMg==" not in text and "hunter2" not in text
    assert [line.split("\t")[2] for line in text.splitlines()] == [
        "EHLO client.example",
        "250-AUTH LOGIN PLAIN CRAM-MD5",
        "AUTH LOGIN",
        "334 VXNlcm5hbWU6",
        "****",
        "334 UGFzc3dvcmQ6",
        "****",
        "235 Authentication successful",
        "MAIL FROM:<bob@example.com>",
        "PASS ****",
    ]


def test_service_logs_share_the_service_folder(tmp_path: Path, clock: FakeClock) -> None:
    logs = ServiceLogs("MTA", tmp_path, clock=clock)
    logs.debug.write("routing 1.MAI")
    logs.activity.write(connection_id=0, remote_ip="", command="ROUTE", parameters="[SF:a/b]")
    logs.w3c.enabled = False
    logs.close()
    assert sorted(p.name for p in (tmp_path / "MTA").iterdir()) == [
        "MTA-Activity-260125.log",
        "MTA-Debug-260125.log",
    ]


def test_logs_follow_the_services_settings(store: Store, clock: FakeClock) -> None:
    settings = store.settings
    settings.set_text("smtp.logging.debug_enabled", "false")
    settings.set_text("smtp.logging.w3c_fields", "date,time,c-ip,cs-method")
    smtp = ServiceLogs("SMTP", store.home.logs, clock=clock)
    smtp.apply_settings(settings, "smtp")
    assert smtp.activity.enabled and smtp.w3c.enabled and not smtp.debug.enabled
    assert smtp.w3c.fields == ("date", "time", "c-ip", "cs-method")

    mta = ServiceLogs("MTA", store.home.logs, clock=clock)
    mta.apply_settings(settings, "mta")  # the MTA has no W3C log
    assert mta.activity.enabled and not mta.w3c.enabled

    settings.set_text("smtp.logging.debug_enabled", "true")
    smtp.apply_settings(settings, "smtp")
    smtp.debug.write("now on")
    smtp.close()
    mta.close()
    assert (store.home.logs / "SMTP" / "SMTP-Debug-260125.log").exists()


def test_one_exchange_reads_as_the_two_lines_of_a_command(tmp_path: Path,
                                                         clock: FakeClock) -> None:
    """Sessions write a command and its reply with one ``exchange`` call: the lines are
    what two ``record`` calls with the session's masker give, SASL answers hidden."""
    log = DebugLog("POP3", tmp_path, clock=clock)
    dialogue = [
        ("AUTH PLAIN", "+ "),
        ("AGJvYgBodW50ZXIy", "+OK logged in"),
        ("RETR 1", "+OK 5120 octets"),
        ("TOP 1 0", "+OK top of message follows\r\nmore\tthan one line"),
        ("PASS hunter2", "-ERR [AUTH] wrong\x07"),
    ]
    paired, separate = log.session_masker(), log.session_masker()
    for command, reply in dialogue:
        expected = "".join(log.record(text, connection_id=9, masker=separate,
                                      from_client=from_client)[1]
                           for text, from_client in ((command, True), (reply, False)))
        assert log.exchange(clock(), 9, command, reply, paired) == expected
    masker = log.session_masker()
    text = "".join(log.exchange(clock(), 9, c, r, masker) for c, r in dialogue)
    assert "AGJvYgBodW50ZXIy" not in text and "hunter2" not in text and "\x07" not in text
