"""Footers on mail leaving a post office (manual 5.2.5, 5.3.4)."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest

from postroom.connectors.postoffice.delivery import Delivery
from postroom.connectors.postoffice.footers import Footer, add_footer
from postroom.store import Store
from tests.connectors.postoffice.sf_setup import folder, handle_next, submit

PLAIN = (b"From: carol@acme.test\r\nTo: bob@example.com\r\nSubject: plain\r\n"
         b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello Bob.\r\n")
ALTERNATIVE = (b"From: carol@acme.test\r\nTo: bob@example.com\r\nSubject: alt\r\n"
               b"MIME-Version: 1.0\r\n"
               b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
               b"--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 tonight?\r\n"
               b"--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n"
               b"PGh0bWw+PGJvZHk+PHA+Q2Fmw6kgdG9uaWdodD88L3A+PC9ib2R5PjwvaHRtbD4=\r\n"
               b"--b1--\r\n")
SIGNED = (b"From: carol@acme.test\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; "
          b"boundary=\"s\"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nsigned text\r\n"
          b"--s\r\nContent-Type: application/pgp-signature\r\n\r\nSIG\r\n--s--\r\n")
WITH_ATTACHMENT = (b"From: carol@acme.test\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n"
                   b"--m\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
                   b"--m\r\nContent-Type: text/plain\r\n"
                   b"Content-Disposition: attachment; filename=\"data.txt\"\r\n\r\n1,2,3\r\n"
                   b"--m--\r\n")

FOOTER = Footer("-- \nAcme Ltd. Confidential.", "<p>Acme Ltd. <b>Confidential</b>.</p>")


def texts(data: bytes) -> dict[str, str]:
    msg = message_from_bytes(data, policy=default)
    return {part.get_content_type(): part.get_content().replace("\r\n", "\n")
            for part in msg.walk()
            if part.get_content_maintype() == "text"}


def test_plain_part_gets_the_text_footer() -> None:
    out = add_footer(PLAIN, FOOTER)
    assert out is not None
    body = texts(out)["text/plain"]
    assert body.startswith("Hello Bob.") and body.rstrip().endswith("Acme Ltd. Confidential.")


def test_both_alternatives_get_it_html_before_body_end() -> None:
    out = add_footer(ALTERNATIVE, FOOTER)
    assert out is not None
    parts = texts(out)
    assert parts["text/plain"].startswith("Café tonight?")
    assert "Acme Ltd. Confidential." in parts["text/plain"]
    html = parts["text/html"]
    assert html.index("<b>Confidential</b>") < html.index("</body>")
    assert "Café tonight?" in html


def test_signed_messages_and_attachments_are_left_alone() -> None:
    assert add_footer(SIGNED, FOOTER) is None
    out = add_footer(WITH_ATTACHMENT, FOOTER)
    assert out is not None
    msg = message_from_bytes(out, policy=default)
    bodies = [p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain"]
    assert "Confidential" in bodies[0] and bodies[1] == "1,2,3"


@pytest.mark.parametrize("data", [
    b"",
    b"no header at all",
    b"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\n\xff\xfe\x00\r\n",
    b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64\r\n",
])
def test_broken_mime_never_raises(data: bytes) -> None:
    out = add_footer(data, FOOTER)
    assert out is None or isinstance(out, bytes)


def enable_footers(world: Store, scope: str = "postoffice_then_global") -> None:
    world.settings.set("messaging_manager.footers.scope", scope)
    world.settings.set("messaging_manager.footers.global_footer", "Sent via mail.test")
    world.directory.update_postoffice("acme", {"footer.text": "Acme Ltd. Confidential."})


def test_mail_from_another_post_office_gets_its_footers(world: Store,
                                                        delivery: Delivery) -> None:
    enable_footers(world)
    submit(world, ["[SF:example/bob]"], body=ALTERNATIVE, sender="[SMTP:carol@acme.test]",
           auth_user="carol@acme")
    handle_next(world, delivery)
    [stored] = folder(world, "example", "bob")
    plain = texts(stored)["text/plain"]
    assert plain.index("Acme Ltd. Confidential.") < plain.index("Sent via mail.test")
    assert "Acme Ltd. Confidential." in texts(stored)["text/html"]


def test_no_footer_inside_a_post_office_or_for_unauthenticated_claims(
        world: Store, delivery: Delivery) -> None:
    enable_footers(world)
    world.directory.update_postoffice("example", {"footer.text": "Example footer"})
    submit(world, ["[SF:example/bob]"], body=PLAIN, sender="[SMTP:alice@example.com]",
           auth_user="alice@example")
    submit(world, ["[SF:example/bob]"], body=PLAIN, sender="[SMTP:carol@acme.test]")
    handle_next(world, delivery)
    handle_next(world, delivery)
    assert folder(world, "example", "bob") == [PLAIN, PLAIN]


def test_scope_disabled_means_no_footer(world: Store, delivery: Delivery) -> None:
    enable_footers(world, "disabled")
    submit(world, ["[SF:example/bob]"], body=PLAIN, auth_user="carol@acme")
    handle_next(world, delivery)
    assert folder(world, "example", "bob") == [PLAIN]
