"""Real IMAP client libraries against the service: imaplib (standard library) and
imapclient (PyPI), each doing what a mail program does."""

from __future__ import annotations

import imaplib
import threading
import time

import pytest

from tests.servers import client_tls
from tests.services.imap.conftest import PASSWORD, ImapServer, message


def test_imaplib_session(imap_server: ImapServer) -> None:
    for n in range(1, 4):
        imap_server.deliver(message(n))
    client = imaplib.IMAP4(imap_server.host, imap_server.port)
    client.starttls(client_tls())
    assert client.login("bob@example.com", PASSWORD)[0] == "OK"
    typ, boxes = client.list()
    assert typ == "OK" and b'(\\HasNoChildren \\Sent) "/" "Sent Items"' in boxes
    typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"3"])
    typ, data = client.search(None, "ALL")
    assert data == [b"1 2 3"]
    typ, data = client.fetch("2", "(RFC822)")
    assert data[0][1] == message(2)
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK" and b"UID 2 FLAGS (\\Seen \\Recent)" in b" ".join(data)
    assert client.store("1", "+FLAGS", "\\Deleted")[0] == "OK"
    assert client.expunge() == ("OK", [b"1"])
    assert client.copy("1", "Drafts")[0] == "OK"
    assert client.create("Archive")[0] == "OK"
    assert client.uid("MOVE", "3", "Archive")[0] == "OK"
    assert client.append("Archive", "(\\Seen)", imaplib.Time2Internaldate(time.time()),
                         message(9))[0] == "OK"
    assert client.status("Archive", "(MESSAGES UNSEEN)")[1] == [
        b"Archive (MESSAGES 2 UNSEEN 1)"]
    client.close()
    client.logout()
    assert [m.uid for m in imap_server.messages()] == [2]


def test_imapclient_session(imap_server: ImapServer) -> None:
    imapclient = pytest.importorskip("imapclient")
    for n in range(1, 6):
        imap_server.deliver(message(n, subject=f"subject {5 - n}"))
    client = imapclient.IMAPClient(imap_server.host, port=imap_server.imaps_port, ssl=True,
                                   ssl_context=client_tls())
    client.login("bob@example", PASSWORD)
    assert b"IDLE" in client.capabilities() and b"MOVE" in client.capabilities()
    folders = {name: flags for flags, _, name in client.list_folders()}
    assert b"\\Trash" in folders["Deleted Items"]
    assert client.find_special_folder(b"\\Junk") == "Junk E-mail"
    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 5 and info[b"UIDNEXT"] == 6
    result = client.fetch([1, 2], ["ENVELOPE", "FLAGS", "RFC822.SIZE",
                                   "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    assert result[1][b"ENVELOPE"].subject == b"subject 4"
    assert result[2][b"RFC822.SIZE"] == len(message(2, subject="subject 3"))
    assert result[1][b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: subject 4\r\n\r\n"
    client.add_flags([1, 2], [imapclient.FLAGGED])
    assert client.search(["FLAGGED"]) == [1, 2]
    assert client.sort(["SUBJECT"]) == [5, 4, 3, 2, 1]
    assert client.get_flags([1]) == {1: (b"\\Flagged", b"\\Recent")}
    client.move([5], "Deleted Items")
    assert client.search() == [1, 2, 3, 4]
    client.create_folder("Lists/Python")
    assert client.folder_exists("Lists/Python")
    client.rename_folder("Lists/Python", "Lists/Rust")
    assert client.folder_status("Lists/Rust", ["MESSAGES"]) == {b"MESSAGES": 0}
    assert client.get_quota_root("INBOX")[0].quota_roots == [""]
    client.unselect_folder()
    client.logout()


def test_imapclient_idle(imap_server: ImapServer) -> None:
    imapclient = pytest.importorskip("imapclient")
    client = imapclient.IMAPClient(imap_server.host, port=imap_server.port, ssl=False)
    client.login("bob@example", PASSWORD)
    client.select_folder("INBOX")
    client.idle()
    delivered: list[float] = []

    def deliver() -> None:
        imap_server.deliver(message(1))
        delivered.append(time.monotonic())

    timer = threading.Timer(0.2, deliver)
    timer.start()
    responses = client.idle_check(timeout=3)
    heard = time.monotonic()
    client.idle_done()
    timer.join()
    assert (1, b"EXISTS") in responses
    assert heard - delivered[0] < 1.0     # committed -> the idling client hears of it
    client.logout()


def test_imaplib_compress_deflate(imap_server: ImapServer) -> None:
    import socket
    import zlib
    imap_server.deliver(message(1))
    sock = socket.create_connection((imap_server.host, imap_server.port), timeout=5)
    sock.recv(4096)
    sock.sendall(f'a LOGIN bob@example "{PASSWORD}"\r\nb COMPRESS DEFLATE\r\n'.encode())
    buf = b""
    while b"b OK" not in buf:
        buf += sock.recv(4096)
    assert buf.endswith(b"b OK DEFLATE active\r\n")
    out, inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
    sock.sendall(out.compress(b"c SELECT INBOX\r\nd FETCH 1 BODY[]\r\n")
                 + out.flush(zlib.Z_SYNC_FLUSH))
    text = b""
    while b"d OK" not in text:
        text += inflate.decompress(sock.recv(4096))
    assert b"* 1 EXISTS" in text and message(1) in text
    sock.close()
