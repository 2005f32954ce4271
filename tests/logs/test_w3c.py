"""W3C log: directives at the top of each file, chosen fields in order, UTC rollover."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postroom import __version__
from postroom.logs import W3C_FIELDS, LogNameError, W3CEntry, W3CLog
from tests.logs.conftest import FakeClock


def test_header_directives_then_fields_in_order(tmp_path: Path, clock: FakeClock) -> None:
    fields = ["time", "c-ip", "cs-method", "cs-uri-query", "sc-status", "date", "time-taken"]
    log = W3CLog("SMTP", tmp_path, fields=fields, clock=clock)
    log.write(
        W3CEntry(
            c_ip="192.0.2.7",
            cs_method="MAIL",
            cs_uri_query="FROM:<a@example.com>",
            sc_status=250,
            time_taken=12,
        )
    )
    log.close()
    # 23:59:58 at UTC+1 is 22:59:58 UTC: the W3C format speaks UTC
    lines = (tmp_path / "ex260125.log").read_text().splitlines()
    assert lines == [
        f"#Software: Postroom {__version__}",
        "#Version: 1.0",
        "#Date: 2026-01-25 22:59:58",
        "#Fields: time c-ip cs-method cs-uri-query sc-status date time-taken",
        "22:59:58 192.0.2.7 MAIL FROM:<a@example.com> 250 2026-01-25 12",
    ]


def test_default_fields_empty_values_and_spaces(tmp_path: Path, clock: FakeClock) -> None:
    log = W3CLog("POP", tmp_path, clock=clock)
    log.write(
        W3CEntry(
            c_ip="192.0.2.8", cs_method="TOP", cs_uri_query="1 10", sc_status="+OK", sc_bytes=5120
        )
    )
    log.close()
    lines = (tmp_path / "ex260125.log").read_text().splitlines()
    assert lines[3] == (
        "#Fields: date time c-ip cs-username cs-method cs-uri-query sc-status sc-bytes cs-bytes"
    )
    assert lines[4] == "2026-01-25 22:59:58 192.0.2.8 - TOP 1+10 +OK 5120 0"

    every = W3CLog("SMTP", tmp_path / "all", fields=list(W3C_FIELDS), clock=clock)
    every.write(W3CEntry(cs_method="QUIT", cs_uri_stem="221 Bye", sc_status=221, s_port=25))
    every.close()
    values = dict(
        zip(
            W3C_FIELDS,
            (tmp_path / "all" / "ex260125.log").read_text().splitlines()[4].split(" "),
            strict=True,
        )
    )
    assert values["s-sitename"] == "SMTP"
    assert values["s-port"] == "25"
    assert values["cs-uri-stem"] == "221+Bye"
    assert values["cs(Cookie)"] == "-"


def test_one_header_per_file_and_utc_rollover(tmp_path: Path, clock: FakeClock) -> None:
    clock.now = datetime(2026, 1, 25, 23, 59, 59, tzinfo=UTC)
    log = W3CLog("IMAP", tmp_path, fields="date time cs-method", clock=clock)
    log.write(W3CEntry(cs_method="LOGIN"))
    log.write(W3CEntry(cs_method="SELECT"))
    clock.advance(seconds=2)
    log.write(W3CEntry(cs_method="LOGOUT"))
    log.close()
    first = (tmp_path / "ex260125.log").read_text().splitlines()
    second = (tmp_path / "ex260126.log").read_text().splitlines()
    assert [line for line in first if line.startswith("#Software")] == [first[0]]
    assert first[4:] == ["2026-01-25 23:59:59 LOGIN", "2026-01-25 23:59:59 SELECT"]
    assert second[2] == "#Date: 2026-01-26 00:00:01"
    assert second[4:] == ["2026-01-26 00:00:01 LOGOUT"]


@pytest.mark.parametrize(
    ("rollover", "name"),
    [
        ("hourly", "ex26012522.log"),
        ("daily", "ex260125.log"),
        ("weekly", "ex260104.log"),
        ("monthly", "ex2601.log"),
    ],
)
def test_rollover_names(tmp_path: Path, clock: FakeClock, rollover: str, name: str) -> None:
    log = W3CLog("SMTP", tmp_path, rollover=rollover, clock=clock)
    log.write(W3CEntry(cs_method="NOOP"))
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_field_change_at_run_time_writes_new_directives(tmp_path: Path, clock: FakeClock) -> None:
    log = W3CLog("SMTP", tmp_path, fields="time cs-method", clock=clock)
    log.write(W3CEntry(cs_method="EHLO"))
    log.fields = ["cs-method", "sc-status"]
    log.write(W3CEntry(cs_method="QUIT", sc_status=221))
    log.close()
    lines = (tmp_path / "ex260125.log").read_text().splitlines()
    assert lines[4:] == [
        "22:59:58 EHLO",
        "#Date: 2026-01-25 22:59:58",
        "#Fields: cs-method sc-status",
        "QUIT 221",
    ]


def test_unknown_field_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(LogNameError) as error:
        W3CLog("SMTP", tmp_path, fields="date time cs-mehtod")
    assert error.value.field == "w3c_fields"
    assert "cs-mehtod" in str(error.value)
    log = W3CLog("SMTP", tmp_path, fields="date")
    with pytest.raises(LogNameError):
        log.fields = "nonsense"
    assert log.fields == ("date",)
    with pytest.raises(LogNameError) as error:
        W3CLog("SMTP", tmp_path, rollover="fortnightly")
    assert error.value.field == "w3c_rollover"
    assert list(tmp_path.iterdir()) == []


def test_credentials_and_line_breaks_in_arguments(tmp_path: Path, clock: FakeClock) -> None:
    log = W3CLog("SMTP", tmp_path, fields="cs-method cs-uri-query", clock=clock)
    log.write(W3CEntry(cs_method="AUTH", cs_uri_query="PLAIN AGJvYgBodW50ZXIy"))
    log.write(W3CEntry(cs_method="HELO", cs_uri_query="x\r\nAUTH PLAIN y"))
    log.close()
    lines = (tmp_path / "ex260125.log").read_text().splitlines()
    assert lines[4:] == ["AUTH PLAIN+****", "HELO x\\r\\nAUTH+PLAIN+y"]


_TEXT = st.text(alphabet=st.sampled_from(list("ab \\+-.:@<>\t\x00\x7fé\u2028")), max_size=6)


@settings(max_examples=300, deadline=None)
@given(values=st.fixed_dictionaries({
    "c_ip": _TEXT, "cs_username": _TEXT, "cs_method": _TEXT, "cs_uri_query": _TEXT,
    "cs_host": _TEXT, "s_computername": _TEXT,
    "s_port": st.one_of(st.none(), st.integers(0, 70000)),
    "sc_status": st.one_of(st.integers(0, 600), _TEXT),
    "sc_bytes": st.integers(0, 10**9), "cs_bytes": st.integers(0, 10**9)}),
    masked=st.booleans())
def test_a_line_is_the_same_whatever_its_values_need(tmp_path_factory: pytest.TempPathFactory,
                                                      values: dict[str, object],
                                                      masked: bool) -> None:
    """Lines are made by a fast path checked once per line; what it writes must be
    exactly what escaping every value on its own gives (spaces, backslashes, control
    characters, non-ASCII, empty values, numbers)."""
    log = W3CLog("SMTP", tmp_path_factory.mktemp("w3c"), fields=W3C_FIELDS)
    entry = W3CEntry(masked=masked, **values)  # type: ignore[arg-type]
    stamp = ("2026-11-26", "07:00:00")
    compiled = log._compile(log.fields)
    slow = compiled.__globals__["slow"]
    line = compiled(entry, stamp)
    assert line == slow(entry, stamp)
    assert line.count(" ") == len(log.fields) - 1 and "\n" not in line
