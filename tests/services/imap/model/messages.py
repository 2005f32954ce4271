"""Sample messages shared by the message-model tests (raw bytes, as clients send them)."""

PLAIN = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)

# bare LF line ends on purpose: stored files may come that way
ALTERNATIVE = (
    b"From: a@example.com\n"
    b"To: b@example.com\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
    b"Content-Type: multipart/alternative; boundary=\"b1\"\n"
    b"\n"
    b"--b1\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"Gr=C3=BC=C3=9Fe\n"
    b"--b1\n"
    b"Content-Type: text/html; charset=utf-8\n"
    b"\n"
    b"<p>Gr\xc3\xbc\xc3\x9fe</p>\n"
    b"--b1--\n"
)

MIXED = (
    b'From: "Joe Q. Public" <john.q.public@example.com>\r\n'
    b"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\n"
    b'Cc: <boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>\r\n'
    b"Reply-To: Team: ann@t.test, bob@t.test;\r\n"
    b"Subject: Hello\r\n"
    b" world\r\n"
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    b"Message-ID: <1234@local.machine.example>\r\n"
    b"In-Reply-To: <1000@local.machine.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hi there\r\n"
    b"--XX\r\n"
    b'Content-Type: application/pdf; name="a.pdf"\r\n'
    b'Content-Disposition: attachment; filename="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Language: en, de\r\n"
    b"\r\n"
    b"SGVsbG8gd29y\r\n"
    b"bGQ=\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Description: forwarded\r\n"
    b"\r\n"
    b"From: a@b.c\r\n"
    b"Subject: inner\r\n"
    b'Content-Type: multipart/mixed; boundary="in"\r\n'
    b"\r\n"
    b"--in\r\n"
    b"\r\n"
    b"inner body\r\n"
    b"--in\r\n"
    b"Content-Type: text/x-weird\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"--in--\r\n"
    b"--XX--\r\n"
    b"epilogue\r\n"
)

BROKEN = b"\x00garbage without headers\nContent-Type: multipart/mixed\n\n--x\nno end"

NO_DELIMITER = (
    b"From: x@y.z\r\n"
    b"Content-Type: multipart/mixed; boundary=zz\r\n"
    b"\r\n"
    b"the boundary never comes\r\n"
)
