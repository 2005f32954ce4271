"""The MTA handler on real queue entries: MTA.inbound -> SF/LS/SMTP.outgoing (manual 6.1)."""

from __future__ import annotations

import email
import email.policy

import pytest

from postroom.mta.agent import MAX_HOPS, MtaAgent
from postroom.store import Store
from tests.mta.mta_setup import MESSAGE, enqueue, ndrs, outgoing, populate, run_agent


@pytest.fixture
def world(store: Store) -> Store:
    return populate(store)


def test_each_connector_gets_its_recipients(world: Store) -> None:
    rcpt = [{"address": "staff@example.com", "target": "[SF:example/staff]",
             "notify": ["FAILURE"], "orcpt": "rfc822;staff@example.com"},
            {"address": "carol@example.com", "target": "[SF:example/carol]",
             "notify": [], "orcpt": None},
            {"address": "news@example.com", "target": "[LS:example/news]", "notify": [],
             "orcpt": None},
            {"address": "x@other.test", "target": "[SMTP:x@other.test]", "notify": ["NEVER"],
             "orcpt": None}]
    entry = enqueue(world, ["[SF:example/staff]", "[SF:example/carol]", "[LS:example/news]",
                            "[SMTP:x@other.test]", "[SMTP:y@remote.test]"],
                    helo="client.remote.test", ret="HDRS", envid="E1", rcpt=rcpt)
    assert run_agent(world) == 1

    assert world.queue.list("MTA.inbound") == []
    (sf,) = outgoing(world, "SF.outgoing")
    assert sf.envelope.recipients == ["[SF:example/bob]", "[SF:example/alice]",
                                      "[SF:example/carol]"]
    assert sf.envelope.sender == "[SMTP:alice@remote.test]"
    assert sf.envelope.extra["ret"] == "HDRS" and sf.envelope.extra["envid"] == "E1"
    assert sf.envelope.extra["helo"] == "client.remote.test"
    # DSN data follows each recipient; a group's members inherit the group's.
    by_target = {r["target"]: r for r in sf.envelope.extra["rcpt"]}
    assert by_target["[SF:example/bob]"]["notify"] == ["FAILURE"]
    assert by_target["[SF:example/bob]"]["expanded_from"] == "[SF:example/staff]"
    assert by_target["[SF:example/carol]"]["address"] == "carol@example.com"
    assert "expanded_from" not in by_target["[SF:example/carol]"]

    (ls,) = outgoing(world, "LS.outgoing")
    assert ls.envelope.recipients == ["[LS:example/news]"]
    assert [r["address"] for r in ls.envelope.extra["rcpt"]] == ["news@example.com"]

    smtp = outgoing(world, "SMTP.outgoing")
    assert sorted(e.envelope.recipients for e in smtp) == [
        ["[SMTP:x@other.test]"], ["[SMTP:zoe@remote.test]", "[SMTP:y@remote.test]"]]
    other = next(e for e in smtp if e.envelope.recipients == ["[SMTP:x@other.test]"])
    assert other.envelope.extra["rcpt"][0]["notify"] == ["NEVER"]
    # Derived tracking ids; the body is the original's, byte for byte.
    ids = {e.tracking_id for e in [sf, ls, *smtp]}
    assert len(ids) == 4 and all(i.startswith(entry.tracking_id + "-") for i in ids)
    assert world.queue.read_body(sf) == MESSAGE


def test_single_target_keeps_the_tracking_id_and_records_routing(world: Store) -> None:
    entry = enqueue(world, ["[SMTP:bob@example.com]", "[SMTP:staff@example.com]"])
    run_agent(world)
    (sf,) = outgoing(world, "SF.outgoing")
    smtp = outgoing(world, "SMTP.outgoing")
    assert [e.envelope.recipients for e in smtp] == [["[SMTP:zoe@remote.test]"]]
    world.tracking.flush()
    routed = [e for e in world.tracking.find(entry.tracking_id) if e.event == "routed"]
    assert sorted(e.detail for e in routed) == [
        "SF [SF:example/alice] via [SF:example/staff]", "SF [SF:example/bob]",
        "SMTP [SMTP:zoe@remote.test] via [SF:example/staff]"]
    assert {e.service for e in routed} == {"MTA"}
    assert {e.sender for e in routed} == {"alice@remote.test"}
    assert {e.tracking_id for e in routed} == {sf.tracking_id, smtp[0].tracking_id}


def test_unknown_local_recipient_bounces_and_the_rest_is_delivered(world: Store) -> None:
    entry = enqueue(world, ["[SMTP:nobody@example.com]", "[SMTP:bob@example.com]"])
    run_agent(world)
    (sf,) = outgoing(world, "SF.outgoing")
    assert sf.envelope.recipients == ["[SF:example/bob]"]
    (ndr,) = ndrs(world)
    assert ndr.envelope.sender == ""
    assert ndr.envelope.recipients == ["[SMTP:alice@remote.test]"]
    assert ndr.envelope.extra["bounce_of"] == entry.tracking_id
    report = email.message_from_bytes(world.queue.read_body(ndr), policy=email.policy.default)
    assert "nobody@example.com" in report.as_string()
    world.tracking.flush()
    events = world.tracking.find(entry.tracking_id, recipient="nobody@example.com")
    assert [e.event for e in events] == ["bounced"]


def test_only_unknown_recipients_acknowledges_the_entry(world: Store) -> None:
    enqueue(world, ["[SMTP:nobody@example.com]"])
    run_agent(world)
    assert [e.envelope.extra.get("source") for e in world.queue.list("MTA.inbound")] == ["ndr"]
    assert world.queue.list("SF.outgoing") == []


def test_null_sender_unknown_recipient_is_dropped_without_ndr(world: Store) -> None:
    enqueue(world, ["[SMTP:nobody@example.com]"], sender="")
    run_agent(world)
    assert world.queue.list() == []


def test_ndr_to_a_local_sender_is_routed_to_the_mailbox(world: Store) -> None:
    enqueue(world, ["[SMTP:nobody@example.com]"], sender="[SMTP:carol@example.com]")
    run_agent(world)
    assert len(ndrs(world)) == 1
    agent = MtaAgent(world, worker="test")
    (claimed,) = world.queue.claim("MTA.inbound", "test")
    agent.handle(claimed)
    (sf,) = outgoing(world, "SF.outgoing")
    assert sf.envelope.recipients == ["[SF:example/carol]"]
    assert sf.envelope.sender == ""


def hops(n: int) -> bytes:
    received = b"".join(b"Received: from hop%d.test by hop%d.test; Sun, 25 Jan 2026 10:00:00 "
                        b"+0000\r\n" % (i, i + 1) for i in range(n))
    return received + b"From: a@remote.test\r\nSubject: loop\r\n\r\nbody\r\n"


def test_mail_loop_is_bounced_not_routed(world: Store) -> None:
    entry = enqueue(world, ["[SMTP:bob@example.com]", "[SMTP:x@remote.test]"],
                    body=hops(MAX_HOPS + 1))
    run_agent(world)
    assert world.queue.list("SF.outgoing") == [] and world.queue.list("SMTP.outgoing") == []
    (ndr,) = ndrs(world)
    assert b"5.4.6" in world.queue.read_body(ndr)
    world.tracking.flush()
    assert {e.event for e in world.tracking.find(entry.tracking_id)
            if e.service == "MTA"} == {"bounced"}


def test_as_many_hops_as_allowed_is_routed(world: Store) -> None:
    enqueue(world, ["[SMTP:bob@example.com]"], body=hops(MAX_HOPS))
    run_agent(world)
    assert len(outgoing(world, "SF.outgoing")) == 1


def test_hops_are_counted_in_a_header_block_longer_than_the_first_read(world: Store) -> None:
    """The agent reads the first 16 KB; a longer header block is read on to its end."""
    padded = b"".join(b"Received: from hop%d.test (" % i + b"x" * 700 + b") by hop.test; Sun, "
                      b"25 Jan 2026 10:00:00 +0000\r\n" for i in range(MAX_HOPS + 1))
    assert len(padded) > 16 * 1024
    enqueue(world, ["[SMTP:x@remote.test]"], body=padded + b"From: a@remote.test\r\n\r\nbody\r\n")
    run_agent(world)
    assert world.queue.list("SMTP.outgoing") == []
    assert len(ndrs(world)) == 1


@pytest.mark.parametrize("body", [
    b"",                                                     # nothing at all
    b"just a body line without any header\r\nand another\r\n",  # no headers
    b"Subject: nul\x00byte\r\nFrom: \x00\r\n\r\nbody\x00\x00\r\n",
    b"Subject: \xff\xfe 8-bit garbage \x80\r\nContent-Type: multipart/mixed\r\n\r\n"
    b"no boundary at all\r\n--\r\n",                         # broken MIME
    b"Content-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\nContent-Type: "
    b"message/rfc822\r\n\r\n--x",                            # truncated nested message
    b"X-Long: " + b"a" * 3_000_000 + b"\r\n\r\nbody\r\n",     # a 3 MB header line
    b"Received: x\r\n" * 5 + b"no blank line, " * 200_000,   # headers never end
])
def test_bad_input_routes_like_any_message(world: Store, body: bytes) -> None:
    enqueue(world, ["[SMTP:bob@example.com]", "[SMTP:x@remote.test]"], body=body)
    run_agent(world)
    assert world.queue.list("MTA.inbound") == []
    (sf,) = outgoing(world, "SF.outgoing")
    assert world.queue.read_body(sf) == body
    assert len(outgoing(world, "SMTP.outgoing")) == 1


def test_a_thousand_recipients(world: Store) -> None:
    remote = [f"[SMTP:user{n}@{('remote', 'other', 'third')[n % 3]}.test]" for n in range(994)]
    local = ["[SMTP:bob@example.com]", "[SF:example/alice]", "[SMTP:staff@example.com]",
             "[SMTP:nobody@example.com]", "[SMTP:any@catch.test]", "[LS:example/news]"]
    enqueue(world, remote + local)
    run_agent(world)
    (sf,) = outgoing(world, "SF.outgoing")
    assert sf.envelope.recipients == ["[SF:example/bob]", "[SF:example/alice]"]
    smtp = outgoing(world, "SMTP.outgoing")
    assert len(smtp) == 3
    assert sum(len(e.envelope.recipients) for e in smtp) == 994 + 1   # + zoe via staff
    assert len(outgoing(world, "LS.outgoing")) == 1
    assert len(ndrs(world)) == 1


def test_empty_group_just_acknowledges(world: Store) -> None:
    world.directory.create_group("example", "empty")
    enqueue(world, ["[SF:example/empty]"])
    run_agent(world)
    assert world.queue.list() == []


def test_mta_logs_when_enabled(world: Store, home: object) -> None:
    from postroom.logs import ServiceLogs

    world.settings.set("mta.logging.debug_enabled", True)
    logs = ServiceLogs("MTA", world.home.logs)
    logs.apply_settings(world.settings, "mta")
    entry = enqueue(world, ["[SMTP:bob@example.com]", "[SMTP:nobody@example.com]"])
    run_agent(world, MtaAgent(world, worker="test", logs=logs))
    logs.close()
    folder = world.home.logs / "MTA"
    activity = "".join(p.read_text() for p in folder.glob("MTA-Activity-*.log"))
    debug = "".join(p.read_text() for p in folder.glob("MTA-Debug-*.log"))
    assert "ROUTE\tSF.outgoing [SF:example/bob]" in activity
    assert "FAIL" in activity and entry.tracking_id in activity
    assert "1 recipient(s) failed" in debug
