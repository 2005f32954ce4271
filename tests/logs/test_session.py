"""A connection's transcript writes exactly what the log classes write, by either path.

:class:`~postroom.logs.session.SessionTranscript` formats most commands itself (its
fast path) and hands the rest (logins, escapes, UTF-8) to the log classes; whichever
it takes, the three files must read as if each line had been written through
``ActivityLog.write``, ``W3CLog.write`` and ``DebugLog.write`` one at a time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.logs import ServiceLogs, W3CEntry
from postroom.logs.masking import _KEYWORD, SecretMasker, has_keyword
from postroom.logs.session import SessionTranscript

from .conftest import FakeClock

# (command, arguments, our reply): plain ones, and ones each needing another rule.
COMMANDS = [
    ("RETR", "17", "+OK 5120 octets"),
    ("DELE", "17", "+OK message 17 deleted"),
    ("STAT", "", "+OK 500 2560000"),
    ("PASS", "hunter2", "+OK logged in"),              # masked
    ("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==", "+OK go"),   # masked
    ("SELECT", "Ünïcode", "a OK done"),                 # UTF-8: escaping rules apply
    ("NOOP", "a\tb", "+OK"),                            # a tab inside a column
    ("MAIL", "FROM:<x\\y@example.com>", "250 2.1.0 Ok"),  # a backslash
    ("", "", "-ERR unknown command"),                   # unparsed
]


def _expected(home: Path, clock: FakeClock) -> ServiceLogs:
    """The reference: every line through the log classes' own one-at-a-time writers."""
    logs = ServiceLogs("POP3", home, clock=clock)
    masker = SecretMasker()
    for command, args, reply in COMMANDS:
        logs.activity.write(connection_id=7, remote_ip="192.0.2.9", command=command,
                            parameters=args, response=reply, bytes_sent=len(reply) + 2,
                            bytes_received=0)
        logs.w3c.write(W3CEntry(c_ip="192.0.2.9", s_ip="192.0.2.1", s_port=110,
                                cs_username="bob", cs_method=command, cs_uri_query=args,
                                cs_uri_stem=reply, sc_status=reply.split()[0],
                                sc_bytes=len(reply) + 2, cs_version="POP3"))
        line = f"{command} {args}".rstrip() if command else "(unrecognised command)"
        logs.debug.write(line, connection_id=7, masker=masker)
        logs.debug.write(reply, connection_id=7, masker=masker, from_client=False)
    logs.close()
    return logs


def _transcript(home: Path, clock: FakeClock) -> ServiceLogs:
    logs = ServiceLogs("POP3", home, clock=clock)

    async def session() -> None:
        transcript = SessionTranscript(logs, 7, "192.0.2.9", "192.0.2.1", 110)
        transcript.username = "bob"
        for command, args, reply in COMMANDS:
            transcript.write_command(command, args, reply, w3c_status=reply.split()[0],
                                     w3c_stem=reply, version="POP3", sent=len(reply) + 2,
                                     received=0)
        transcript.flush()

    asyncio.run(session())
    logs.close()
    return logs


def _files(home: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(home.rglob("*.log"))}


def test_buffered_transcript_writes_what_the_log_classes_write(tmp_path: Path,
                                                               clock: FakeClock) -> None:
    clock.advance(seconds=-60)          # one day, one second: a single file per log
    _expected(tmp_path / "one-by-one", clock)
    _transcript(tmp_path / "session", clock)
    expected = _files(tmp_path / "one-by-one")
    written = _files(tmp_path / "session")
    assert set(written) == set(expected) and len(written) == 3
    for name, text in expected.items():
        assert written[name] == text, name
    activity = next(text for name, text in written.items() if "Activity" in name)
    assert "hunter2" not in activity and "AGFsaWNl" not in activity
    assert "a\\tb" in activity                  # escaped, never a column of its own


def test_transcript_lines_follow_the_clock_into_the_next_day(tmp_path: Path,
                                                             clock: FakeClock) -> None:
    """Commands on both sides of midnight land in both days' files, in order."""
    logs = ServiceLogs("POP3", tmp_path, clock=clock)

    async def session() -> None:
        transcript = SessionTranscript(logs, 3, "192.0.2.9", "192.0.2.1", 110)
        for n in range(6):
            transcript.write_command("RETR", str(n), "+OK", w3c_status="+OK",
                                     w3c_stem="+OK", version="POP3", sent=5, received=0)
            clock.advance(seconds=1)
        transcript.flush()

    asyncio.run(session())
    logs.close()
    days = sorted(p.name for p in (tmp_path / "POP3").glob("POP3-Activity-*.log"))
    assert days == ["POP3-Activity-260125.log", "POP3-Activity-260126.log"]
    first, second = ((tmp_path / "POP3" / day).read_text().splitlines() for day in days)
    assert [line.split("\t")[6] for line in first] == ["0", "1"]
    assert [line.split("\t")[6] for line in second] == ["2", "3", "4", "5"]
    assert second[0].startswith("01/26/26 00:00:00\t")


@settings(max_examples=300)
@given(st.text(max_size=40) | st.text(alphabet="AUTHPASOGINuthpasogin ſıK\u0130", max_size=12))
def test_keyword_test_answers_as_the_case_blind_pattern(text: str) -> None:
    """The quick test may only ever say yes where the regular expression says yes, and
    must say yes wherever it does (a miss would write a credential in clear)."""
    assert has_keyword(text) == (_KEYWORD.search(text) is not None)
