"""Activity log: the manual's file name, ten tab-separated columns in order, midnight."""

from __future__ import annotations

from pathlib import Path

import pytest

from postroom.logs import ACTIVITY_COLUMNS, ActivityLog, Direction, LogNameError
from tests.logs.conftest import FakeClock


def rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_columns_in_the_manuals_order(tmp_path: Path, clock: FakeClock) -> None:
    log = ActivityLog("SMTP", tmp_path / "SMTP", clock=clock)
    log.write(
        connection_id=1432,
        remote_ip="192.0.2.7",
        command="RCPT",
        parameters="TO:<bob@example.com>",
        response="250 Requested mail action okay, completed",
        bytes_sent=43,
        bytes_received=26,
        message_id="7A1F3C.MAI",
    )
    log.write(
        connection_id=9,
        remote_ip="198.51.100.1",
        command="MAIL",
        parameters="FROM:<a@example.com>",
        response="250 OK",
        direction=Direction.OUT,
    )
    log.close()
    [inbound, outbound] = rows(tmp_path / "SMTP" / "SMTP-Activity-260125.log")
    assert len(inbound) == len(ACTIVITY_COLUMNS) == 10
    assert inbound == [
        "01/25/26 23:59:58",
        "SMTP-IN",
        "7A1F3C.MAI",
        "1432",
        "192.0.2.7",
        "RCPT",
        "TO:<bob@example.com>",
        "250 Requested mail action okay, completed",
        "43",
        "26",
    ]
    assert outbound[1] == "SMTP-OU"
    assert outbound[2] == ""
    assert outbound[8:] == ["0", "0"]


def test_rotates_at_local_midnight_and_appends(tmp_path: Path, clock: FakeClock) -> None:
    log = ActivityLog("POP", tmp_path, clock=clock)
    log.write(connection_id=1, remote_ip="192.0.2.1", command="USER", parameters="bob")
    clock.advance(seconds=3)  # 00:00:01 on the 26th, local time
    log.write(connection_id=1, remote_ip="192.0.2.1", command="STAT")
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "POP-Activity-260125.log",
        "POP-Activity-260126.log",
    ]
    assert rows(tmp_path / "POP-Activity-260126.log")[0][:2] == ["01/26/26 00:00:01", "POP-IN"]

    # a restarted service appends to the day's file, it never truncates it
    again = ActivityLog("POP", tmp_path, clock=clock)
    again.write(connection_id=2, remote_ip="192.0.2.2", command="QUIT")
    again.close()
    assert [row[5] for row in rows(tmp_path / "POP-Activity-260126.log")] == ["STAT", "QUIT"]


def test_client_text_cannot_forge_lines_or_columns(tmp_path: Path, clock: FakeClock) -> None:
    log = ActivityLog("SMTP", tmp_path, clock=clock)
    log.write(
        connection_id=3,
        remote_ip="192.0.2.9",
        command="HELO",
        parameters="evil\r\n01/25/26 23:59:58\tSMTP-IN\tforged\tx",
    )
    log.close()
    [row] = rows(tmp_path / "SMTP-Activity-260125.log")
    assert len(row) == 10
    assert row[6] == "evil\\r\\n01/25/26 23:59:58\\tSMTP-IN\\tforged\\tx"


def test_credentials_never_reach_the_file(tmp_path: Path, clock: FakeClock) -> None:
    log = ActivityLog("SMTP", tmp_path, clock=clock)
    log.write(
        connection_id=4,
        remote_ip="192.0.2.4",
        command="AUTH",
        parameters="PLAIN AGJvYgBodW50ZXIy",
        response="235 Authenticated",
    )
    log.write(
        connection_id=4, remote_ip="192.0.2.4", command="", parameters="aHVudGVyMg==", secret=True
    )
    log.close()
    text = (tmp_path / "SMTP-Activity-260125.log").read_text()
    assert "AGJvYgBodW50ZXIy" not in text and "aHVudGVyMg==" not in text
    assert [row[6] for row in rows(tmp_path / "SMTP-Activity-260125.log")] == [
        "PLAIN ****",
        "****",
    ]


def test_switched_off_and_on_at_run_time(tmp_path: Path, clock: FakeClock) -> None:
    log = ActivityLog("IMAP", tmp_path, enabled=False, clock=clock)
    log.write(connection_id=1, remote_ip="192.0.2.1", command="NOOP")
    assert list(tmp_path.iterdir()) == []
    log.enabled = True
    log.write(connection_id=1, remote_ip="192.0.2.1", command="CAPABILITY")
    log.enabled = False
    log.write(connection_id=1, remote_ip="192.0.2.1", command="LOGOUT")
    log.close()
    assert [row[5] for row in rows(tmp_path / "IMAP-Activity-260125.log")] == ["CAPABILITY"]


def test_bad_service_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LogNameError) as error:
        ActivityLog("../etc", tmp_path)
    assert error.value.field == "service"
    assert list(tmp_path.iterdir()) == []
