"""Message data readers: DATA (dot-terminated) and BDAT (counted) bodies.

Untrusted input: the message body, streamed. Neither reader ever holds more than
the bytes it was given plus at most two held-back octets, so a 50 MB message costs
no more memory than one network read (DEPENDENCIES.md: aiosmtpd's whole-message
buffering is what we refuse).

DATA (RFC 5321 §4.1.1.4, §4.5.2): the body ends only at ``<CRLF>.<CRLF>``, and a
line starting with a period has that period removed (dot-unstuffing). Bare LF and
bare CR are *never* line endings here. This is the defence against SMTP smuggling
(SEC Consult, December 2023): a sender hides ``<LF>.<LF>`` or ``<LF>.<CRLF>`` or
``<CR>.<CR>`` in a body, followed by a second message's commands, hoping one server
sees the end of data where another does not. We treat such sequences as body
octets, so the "smuggled" commands stay inside the first message; and we report
them (``bare_line_ending``) so the protocol can refuse the message outright
(``550 5.5.2``, the default) rather than store and later relay bytes that a
less careful next hop might split. A ``.`` after a bare LF is not at a line start
and is kept.

BDAT (RFC 3030 §2): exactly ``size`` octets follow the command, binary-safe, with
no dot handling at all; ``<CRLF>.<CRLF>`` inside a chunk is just data.

Both readers count the body against ``max_size``; past it they keep consuming
(so the session stays in step) but stop passing data on, and flag ``oversize``.
"""

from __future__ import annotations

_CRLF_DOT = b"\r\n."
_DOT = 0x2E
_CR = 0x0D
_LF = 0x0A


class DotReader:
    """Reads a DATA body up to ``<CRLF>.<CRLF>``, dot-unstuffed, in pieces."""

    def __init__(self, *, max_size: int | None, max_line_length: int | None) -> None:
        self.max_size = max_size
        self.max_line_length = max_line_length
        self.size = 0
        self.oversize = False
        self.bare_line_ending = False
        self.line_too_long = False
        self.done = False
        self._line_start = True  # the CRLF ending the DATA command starts the body
        self._line_length = 0

    def feed(self, buf: bytearray, pos: int) -> tuple[bytes, int]:
        """Consume what can be decided from ``buf[pos:]``; return (body bytes, new pos).

        Stops early only at the end of data (``done`` becomes true) or when the
        remaining octets (at most ``\\r``, ``.`` or ``.\\r``) need the next read to
        be decided.
        """
        end = len(buf)
        pieces: list[bytes] = []
        while not self.done:
            if self._line_start:
                if pos >= end:
                    break
                if buf[pos] == _DOT:
                    left = end - pos
                    if left == 1 or (left == 2 and buf[pos + 1] == _CR):
                        break  # ".", ".\r": the next octets decide
                    if left >= 3 and buf[pos + 1] == _CR and buf[pos + 2] == _LF:
                        pos += 3
                        self.done = True
                        break
                    pos += 1  # dot-unstuffing (RFC 5321 §4.5.2)
                self._line_start = False
            found = buf.find(_CRLF_DOT, pos)
            if found >= 0:
                pieces.append(bytes(buf[pos : found + 2]))
                pos = found + 2
                self._line_start = True
                continue
            stop = end
            if end > pos and buf[end - 1] == _CR:
                stop = end - 1  # hold back a CR: is it the start of CRLF?
            elif end - pos >= 2 and buf[end - 2] == _CR and buf[end - 1] == _LF:
                self._line_start = True
            if stop > pos:
                pieces.append(bytes(buf[pos:stop]))
            pos = stop
            break
        data = b"".join(pieces)
        return self._account(data), pos

    def _account(self, data: bytes) -> bytes:
        if not data:
            return data
        crlf = data.count(b"\r\n")
        if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
            self.bare_line_ending = True
        if self.max_line_length is not None and not self.line_too_long:
            lines = data.split(b"\r\n")
            first = self._line_length + len(lines[0])
            longest = max(first, *(len(line) for line in lines[1:])) if len(lines) > 1 else first
            self._line_length = len(lines[-1]) if len(lines) > 1 else first
            if longest > self.max_line_length:
                self.line_too_long = True
        self.size += len(data)
        if self.max_size is not None and self.size > self.max_size:
            self.oversize = True
        return b"" if self.oversize else data


class ChunkReader:
    """Reads exactly ``size`` octets of one BDAT chunk (RFC 3030), binary-safe.

    ``message_size`` is the running total of the message (earlier chunks included)
    so the size limit applies to the whole message. With ``discard`` the octets are
    consumed and dropped (a refused BDAT must still be read past, RFC 3030 §2).
    """

    def __init__(
        self,
        size: int,
        *,
        last: bool = False,
        message_size: int = 0,
        max_size: int | None = None,
        discard: bool = False,
    ) -> None:
        self.size = size
        self.last = last
        self.remaining = size
        self.message_size = message_size
        self.max_size = max_size
        self.discard = discard
        self.oversize = max_size is not None and message_size + size > max_size

    @property
    def done(self) -> bool:
        return self.remaining == 0

    def feed(self, buf: bytearray, pos: int) -> tuple[bytes, int]:
        """Take up to ``remaining`` octets from ``buf[pos:]``; return (data, new pos)."""
        take = min(self.remaining, len(buf) - pos)
        if take <= 0:
            return b"", pos
        self.remaining -= take
        self.message_size += take
        if self.discard or self.oversize:
            return b"", pos + take
        return bytes(buf[pos : pos + take]), pos + take
