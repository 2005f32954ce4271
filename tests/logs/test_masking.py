"""Every credential form of SMTP, POP3 and IMAP is hidden; ordinary lines are not."""

from __future__ import annotations

import pytest

from postroom.logs import SecretMasker, mask_arguments, mask_secrets

SECRETS = [
    "AGJvYgBodW50ZXIy",
    "Ym9i",
    "hunter2",
    "c4c9334bac560ecc979e58001b3e22fb",
    "Ym9iIDlmOGUx",
    'hun ter\\"2',
]


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        # SMTP AUTH with an initial response (RFC 4954)
        ("AUTH PLAIN AGJvYgBodW50ZXIy", "AUTH PLAIN ****"),
        ("auth plain AGJvYgBodW50ZXIy", "auth plain ****"),
        ("AUTH LOGIN Ym9i", "AUTH LOGIN ****"),
        ("AUTH XOAUTH2 dXNlcj1ib2IBYXV0aD1CZWFyZXIgaHVudGVyMgEB", "AUTH XOAUTH2 ****"),
        # with a transcript marker in front
        ("C: AUTH PLAIN AGJvYgBodW50ZXIy", "C: AUTH PLAIN ****"),
        ("<< AUTH PLAIN AGJvYgBodW50ZXIy", "<< AUTH PLAIN ****"),
        ("RECV: PASS hunter2", "RECV: PASS ****"),
        # POP3 (RFC 1939, RFC 5034)
        ("PASS hunter2", "PASS ****"),
        ("PASS hunter2 with spaces", "PASS ****"),
        ("APOP bob c4c9334bac560ecc979e58001b3e22fb", "APOP bob ****"),
        # IMAP (RFC 9051, RFC 4959)
        ("a1 LOGIN bob hunter2", "a1 LOGIN bob ****"),
        ('a1 login "bob smith" "hun ter\\"2"', 'a1 login "bob smith" ****'),
        ("a1 LOGIN bob {7}", "a1 LOGIN bob {7}"),
        ("a1 LOGIN bob {7+}", "a1 LOGIN bob {7+}"),
        ("a2 AUTHENTICATE PLAIN AGJvYgBodW50ZXIy", "a2 AUTHENTICATE PLAIN ****"),
        # nothing secret: unchanged
        ("AUTH LOGIN", "AUTH LOGIN"),
        ("AUTH CRAM-MD5", "AUTH CRAM-MD5"),
        ("a2 AUTHENTICATE PLAIN", "a2 AUTHENTICATE PLAIN"),
        ("MAIL FROM:<bob@example.com> AUTH=<>", "MAIL FROM:<bob@example.com> AUTH=<>"),
        ("USER bob", "USER bob"),
        ("Login failed for bob", "Login failed for bob"),
        ("250-AUTH LOGIN PLAIN CRAM-MD5", "250-AUTH LOGIN PLAIN CRAM-MD5"),
        ("", ""),
    ],
)
def test_single_line_forms(line: str, masked: str) -> None:
    assert mask_secrets(line) == masked


def test_activity_columns_are_masked_as_one_command() -> None:
    assert mask_arguments("AUTH", "PLAIN AGJvYgBodW50ZXIy") == "PLAIN ****"
    assert mask_arguments("PASS", "hunter2") == "****"
    assert mask_arguments("APOP", "bob c4c9334b") == "bob ****"
    assert mask_arguments("LOGIN", "bob hunter2") == "bob ****"  # IMAP, tag in its own column
    assert mask_arguments("RCPT", "TO:<bob@example.com>") == "TO:<bob@example.com>"


def run(dialogue: list[tuple[str, bool]]) -> list[str]:
    masker = SecretMasker()
    return [masker.mask(line, from_client=from_client) for line, from_client in dialogue]


def test_smtp_auth_plain_without_initial_response() -> None:
    assert run(
        [
            ("AUTH PLAIN", True),
            ("334 ", False),
            ("AGJvYgBodW50ZXIy", True),
            ("235 2.7.0 ok", False),
            ("NOOP", True),
        ]
    ) == ["AUTH PLAIN", "334 ", "****", "235 2.7.0 ok", "NOOP"]


def test_smtp_auth_login_and_failed_attempt() -> None:
    assert run(
        [
            ("AUTH LOGIN Ym9i", True),
            ("334 UGFzc3dvcmQ6", False),
            ("aHVudGVyMg==", True),
            ("535 5.7.8 failed", False),
            ("RSET", True),
        ]
    ) == ["AUTH LOGIN ****", "334 UGFzc3dvcmQ6", "****", "535 5.7.8 failed", "RSET"]


def test_smtp_cram_md5() -> None:
    assert (
        run(
            [
                ("AUTH CRAM-MD5", True),
                ("334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91cj4=", False),
                ("Ym9iIDlmOGUx", True),
                ("235 ok", False),
            ]
        )[2]
        == "****"
    )


def test_client_cancels_sasl() -> None:
    assert run(
        [
            ("AUTH LOGIN", True),
            ("334 VXNlcm5hbWU6", False),
            ("*", True),
            ("501 cancelled", False),
            ("QUIT", True),
        ]
    ) == ["AUTH LOGIN", "334 VXNlcm5hbWU6", "*", "501 cancelled", "QUIT"]


def test_pop3_sasl_ends_at_plus_ok() -> None:
    assert run(
        [
            ("AUTH PLAIN", True),
            ("+ ", False),
            ("AGJvYgBodW50ZXIy", True),
            ("+OK maildrop locked", False),
            ("STAT", True),
        ]
    ) == ["AUTH PLAIN", "+ ", "****", "+OK maildrop locked", "STAT"]


def test_imap_authenticate_and_literals() -> None:
    assert run(
        [
            ("a1 AUTHENTICATE PLAIN", True),
            ("+", False),
            ("AGJvYgBodW50ZXIy", True),
            ("a1 OK done", False),
            ("a2 LOGIN {3}", True),
            ("+ go ahead", False),
            ("bob {7}", True),
            ("+ go ahead", False),
            ("hunter2", True),
            ("a2 OK", False),
            ("a3 SELECT INBOX", True),
        ]
    ) == [
        "a1 AUTHENTICATE PLAIN",
        "+",
        "****",
        "a1 OK done",
        "a2 LOGIN {3}",
        "+ go ahead",
        "**** {7}",
        "+ go ahead",
        "****",
        "a2 OK",
        "a3 SELECT INBOX",
    ]


def test_no_secret_survives_any_form() -> None:
    lines = [
        "AUTH PLAIN AGJvYgBodW50ZXIy",
        "AUTH LOGIN Ym9i",
        "PASS hunter2",
        "APOP bob c4c9334bac560ecc979e58001b3e22fb",
        'a LOGIN bob "hun ter\\"2"',
    ]
    for line in lines:
        masked = mask_secrets(line)
        assert not any(secret in masked for secret in SECRETS), masked
