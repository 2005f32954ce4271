"""Over-quota handling and usage notices (manual 5.3.5, 6.2.4.2)."""

from __future__ import annotations

from postroom.connectors.postoffice.delivery import Delivery
from postroom.connectors.postoffice.quota import QuotaNotices
from postroom.connectors.postoffice.sent_marks import SentMarks
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import MESSAGE, folder, handle_next, inbound, submit

SMALL_QUOTA = 300          # bytes: MESSAGE (197 bytes) fits once, not twice


def fill_bob(world: Store, delivery: Delivery) -> None:
    world.directory.update_mailbox("example", "bob", quota_bytes=SMALL_QUOTA)
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"


def notices_in(world: Store, po: str, mb: str) -> list[bytes]:
    return [m for m in folder(world, po, mb) if b"Auto-Submitted: auto-generated" in m]


def test_return_to_sender_bounces_5_2_2_and_tells_the_mailbox_once(
        world: Store, delivery: Delivery) -> None:
    fill_bob(world, delivery)
    for _ in range(3):
        submit(world, ["[SF:example/bob]"], auth_user="zed")
        [outcome] = handle_next(world, delivery)
        assert outcome.event == "bounced" and "5.2.2" in outcome.detail
    ndrs = inbound(world)
    assert len(ndrs) == 3
    assert all(e.envelope.recipients == ["[SMTP:zed@remote.test]"] for e, _ in ndrs)
    assert all(b"5.2.2" in body for _, body in ndrs)
    # the user hears once per crossing (and the post office's postmaster too)
    assert len(notices_in(world, "example", "bob")) == 1
    assert len(notices_in(world, "example", "postmaster")) == 1
    assert folder(world, "example", "bob").count(MESSAGE) == 1


def test_notice_again_after_the_mailbox_went_under_its_limit(
        world: Store, delivery: Delivery) -> None:
    fill_bob(world, delivery)
    submit(world, ["[SF:example/bob]"], auth_user="zed")
    handle_next(world, delivery)
    assert len(notices_in(world, "example", "bob")) == 1
    # the user cleans up; the next delivery finds the mailbox under its limit again
    uids = [m.uid for m in world.messages.list_messages("example", "bob", "Inbox")]
    world.messages.expunge("example", "bob", "Inbox", uids)
    fill_bob(world, delivery)     # delivered under the limit: the crossing is over
    submit(world, ["[SF:example/bob]"], auth_user="zed")
    handle_next(world, delivery)
    assert len(notices_in(world, "example", "bob")) == 1   # the new one (old ones expunged)


def test_postmaster_action_passes_the_message_to_the_postmaster(
        world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.quota_exceeded_action", "postmaster")
    fill_bob(world, delivery)
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"
    assert outcome.detail == "example/postmaster/Inbox (mailbox bob@example is full)"
    assert MESSAGE in folder(world, "example", "postmaster")
    # the sender is told (null sender, never bounced), not sent an NDR
    [(notice, body)] = inbound(world)
    assert notice.envelope.sender == "" and b"Auto-Submitted: auto-generated" in body
    assert b"passed to the post office's postmaster" in body


def test_notify_only_stores_over_quota(world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.quota_exceeded_action", "notify_only")
    world.settings.set("postoffice_connector.quota_notifications", "sender")
    fill_bob(world, delivery)
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.detail == "example/bob/Inbox (over quota)"
    assert folder(world, "example", "bob").count(MESSAGE) == 2
    assert notices_in(world, "example", "bob") == []      # "sender" only
    [(notice, _body)] = inbound(world)
    assert notice.envelope.recipients == ["[SMTP:zed@remote.test]"]


def test_no_sender_notice_for_bulk_mail_or_with_notifications_off(
        world: Store, delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.quota_exceeded_action", "notify_only")
    fill_bob(world, delivery)
    submit(world, ["[SF:example/bob]"], body=b"Precedence: bulk\r\n" + MESSAGE)
    handle_next(world, delivery)
    assert inbound(world) == []
    world.settings.set("postoffice_connector.quota_notifications", "none")
    submit(world, ["[SF:example/bob]"])
    handle_next(world, delivery)
    assert inbound(world) == []


def test_inbox_only_enumeration_ignores_other_folders(world: Store,
                                                      delivery: Delivery) -> None:
    world.settings.set("postoffice_connector.quota_notifications", "sender")
    world.directory.update_mailbox("example", "bob", quota_bytes=SMALL_QUOTA)
    world.messages.append("example", "bob", "Sent Items", MESSAGE)
    world.messages.append("example", "bob", "Sent Items", MESSAGE, ignore_quota=True)
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "bounced"         # all folders count by default
    world.settings.set("postoffice_connector.quota_enumeration", "inbox")
    submit(world, ["[SF:example/bob]"])
    [outcome] = handle_next(world, delivery)
    assert outcome.event == "delivered"


def test_post_office_usage_threshold_notifies_once_per_crossing(world: Store) -> None:
    world.directory.update_postoffice("example", {
        "usage_notifications.enabled": True, "usage_notifications.threshold_mb": 1,
        "usage_notifications.notify_mailbox": "postmaster"})
    marks = SentMarks(world)
    delivery = Delivery(world, marks=marks,
                        notices=QuotaNotices(world, marks, usage_check_seconds=0))
    big = MESSAGE + b"y" * (600 * 1024)
    for _ in range(4):                       # crosses 1 MB on the second message
        submit(world, ["[SF:example/bob]"], body=big)
        handle_next(world, delivery)
    notices = notices_in(world, "example", "postmaster")
    assert len(notices) == 1 and b"Subject: Post office example reached" in notices[0]
    # back under the threshold, then over again: a second notice
    uids = [m.uid for m in world.messages.list_messages("example", "bob", "Inbox")]
    world.messages.expunge("example", "bob", "Inbox", uids)
    submit(world, ["[SF:example/bob]"])
    handle_next(world, delivery)
    for _ in range(2):
        submit(world, ["[SF:example/bob]"], body=big)
        handle_next(world, delivery)
    assert len(notices_in(world, "example", "postmaster")) == 2
