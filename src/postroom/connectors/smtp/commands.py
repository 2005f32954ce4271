"""SMTP command lines into events, and server replies into state changes.

Untrusted input: one command line from the client (CRLF already removed by
:class:`~postroom.connectors.smtp.protocol.SmtpServerProtocol`). One parse function
per command (RFC 5321 §4.1.1); each either returns the event for the server to
answer or raises :class:`ProtocolError` with the reply. The order of commands is
checked first, against :data:`.state.ALLOWED`, so an out-of-order command gets
``503`` whatever its arguments. :func:`advance` is the other half: what each reply
to each event does to the session.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING

from postroom.connectors.smtp import events as ev
from postroom.connectors.smtp import wire
from postroom.connectors.smtp.address import (
    CONTROL_CHARACTER,
    AddressError,
    parse_forward_path,
    parse_reverse_path,
    split_path,
)
from postroom.connectors.smtp.data import ChunkReader, DotReader
from postroom.connectors.smtp.params import (
    ParamError,
    check_mail_params,
    check_rcpt_params,
    split_params,
)
from postroom.connectors.smtp.state import (
    ALLOWED,
    OUT_OF_ORDER,
    AuthExchange,
    ProtocolError,
    SmtpUsageError,
    State,
    Transaction,
)

if TYPE_CHECKING:
    from postroom.connectors.smtp.protocol import SmtpServerProtocol

_HTTP_VERBS = frozenset({"GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE"})
_UTF8_COMMANDS = frozenset({"MAIL", "RCPT", "VRFY", "EXPN"})
_EXTENSION_FEATURE = {"BDAT": "chunking", "STARTTLS": "starttls"}
_MAX_BDAT_DIGITS = 18


def dispatch(proto: SmtpServerProtocol, line: bytes) -> ev.Event | object:
    """Parse one command line in the session's current state.

    Returns an event, or (BDAT only) ``NEED_DATA``/``CLOSED`` when the chunk's
    octets have not arrived yet.
    """
    text = _decode(proto, line)
    verb, _, arg = text.partition(" ")
    verb = verb.upper()
    arg = arg.strip(" ")
    handler = _HANDLERS.get(verb)
    if handler is None:
        if verb in _HTTP_VERBS and "HTTP/" in arg.upper():
            raise ProtocolError(
                wire.UNRECOGNIZED_COMMAND.with_text("This is an SMTP server"), fatal=True
            )
        raise ProtocolError(wire.UNRECOGNIZED_COMMAND)
    if verb in proto.features.disabled_commands:
        raise ProtocolError(wire.NOT_IMPLEMENTED.with_text(f"{verb} command is disabled"))
    feature = _EXTENSION_FEATURE.get(verb)
    if feature and not getattr(proto.features, feature):
        _discard_bdat(proto, verb, arg)
        raise ProtocolError(wire.NOT_IMPLEMENTED)
    if proto.state not in ALLOWED[verb]:
        _discard_bdat(proto, verb, arg)
        if proto.state is State.REFUSED:
            raise ProtocolError(wire.BAD_SEQUENCE.with_text("Only QUIT is accepted now"))
        raise ProtocolError(OUT_OF_ORDER.get((verb, proto.state), wire.BAD_SEQUENCE))
    if not text.isascii() and (
        verb not in _UTF8_COMMANDS or (verb not in ("MAIL", "RCPT") and not proto.features.smtputf8)
    ):
        raise ProtocolError(wire.EIGHT_BIT_COMMAND)
    return handler(proto, arg)


def _decode(proto: SmtpServerProtocol, line: bytes) -> str:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(wire.EIGHT_BIT_COMMAND) from None
    if CONTROL_CHARACTER.search(text):
        raise ProtocolError(wire.EIGHT_BIT_COMMAND)
    return text


def _no_args(arg: str, verb: str) -> None:
    if arg:
        raise ProtocolError(wire.PARAM_SYNTAX.with_text(f"{verb} takes no arguments"))


def _helo_name(arg: str, verb: str) -> str:
    if not arg or " " in arg:
        raise ProtocolError(
            wire.PARAM_SYNTAX.with_text(f"{verb} requires one domain name or address literal")
        )
    return arg


def _ehlo(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    return ev.Ehlo(_helo_name(arg, "EHLO"))


def _helo(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    return ev.Helo(_helo_name(arg, "HELO"))


def _mail(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    if arg[:5].upper() != "FROM:":
        raise ProtocolError(wire.PARAM_SYNTAX.with_text("Syntax: MAIL FROM:<address>"))
    path_text, params = _path_and_params(proto, arg[5:], wire.BAD_SENDER_SYNTAX)
    try:
        typed = check_mail_params(params, proto._offered_keywords())
    except ParamError as exc:
        raise ProtocolError(exc.reply) from None
    smtputf8 = bool(typed["smtputf8"])
    if not arg.isascii() and not smtputf8:
        raise ProtocolError(wire.NON_ASCII_SENDER)
    try:
        path = parse_reverse_path(path_text, smtputf8=smtputf8)
    except AddressError as exc:
        if exc.reason == "utf8":
            raise ProtocolError(wire.NON_ASCII_SENDER) from None
        raise ProtocolError(wire.BAD_SENDER_SYNTAX.with_text(_capitalise(exc.message))) from None
    size = typed.get("size")
    limit = proto.max_message_size
    if isinstance(size, int) and limit is not None and size > limit:
        raise ProtocolError(wire.SIZE_EXCEEDED)
    return ev.MailFrom(
        path,
        params,
        size=size if isinstance(size, int) else None,
        body=_opt_str(typed.get("body")),
        smtputf8=smtputf8,
        ret=_opt_str(typed.get("ret")),
        envid=_opt_str(typed.get("envid")),
        auth=_opt_str(typed.get("auth")),
    )


def _rcpt(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    transaction = proto._transaction
    assert transaction is not None
    if arg[:3].upper() != "TO:":
        raise ProtocolError(wire.PARAM_SYNTAX.with_text("Syntax: RCPT TO:<address>"))
    path_text, params = _path_and_params(proto, arg[3:], wire.BAD_RECIPIENT_SYNTAX)
    try:
        typed = check_rcpt_params(params, proto._offered_keywords())
    except ParamError as exc:
        raise ProtocolError(exc.reply) from None
    smtputf8 = transaction.mail.smtputf8
    if not arg.isascii() and not smtputf8:
        raise ProtocolError(wire.NON_ASCII_RECIPIENT)
    try:
        path = parse_forward_path(path_text, smtputf8=smtputf8)
    except AddressError as exc:
        if exc.reason == "utf8":
            raise ProtocolError(wire.NON_ASCII_RECIPIENT) from None
        raise ProtocolError(wire.BAD_RECIPIENT_SYNTAX.with_text(_capitalise(exc.message))) from None
    if transaction.recipients >= proto.max_recipients:
        raise ProtocolError(wire.TOO_MANY_RECIPIENTS)
    notify = typed.get("notify")
    return ev.RcptTo(
        path,
        params,
        notify=notify if isinstance(notify, tuple) else None,
        orcpt=_opt_str(typed.get("orcpt")),
    )


def _path_and_params(
    proto: SmtpServerProtocol, rest: str, bad_syntax: wire.Reply
) -> tuple[str, dict[str, str | None]]:
    rest = rest.lstrip(" ")  # "MAIL FROM: <a@b>" is common enough to accept
    try:
        path_text, params_text = split_path(rest)
    except AddressError as exc:
        raise ProtocolError(bad_syntax.with_text(_capitalise(exc.message))) from None
    if params_text and not params_text.startswith(" "):
        raise ProtocolError(bad_syntax.with_text("Expected a space after the address"))
    try:
        params = split_params(params_text)
    except ParamError as exc:
        raise ProtocolError(exc.reply) from None
    if params and not proto.esmtp:
        raise ProtocolError(wire.MAIL_PARAMS_UNKNOWN.with_text("Parameters need an EHLO session"))
    return path_text, params


def _data(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    _no_args(arg, "DATA")
    transaction = proto._transaction
    assert transaction is not None
    if transaction.mail.body == "BINARYMIME":
        raise ProtocolError(wire.BINARYMIME_NEEDS_BDAT)
    transaction.used_data = True
    return ev.DataStart()


def _parse_bdat(arg: str) -> tuple[int, bool]:
    parts = arg.split(" ")
    size_text = parts[0]
    if not size_text.isdigit() or not size_text.isascii() or len(size_text) > _MAX_BDAT_DIGITS:
        raise ProtocolError(wire.PARAM_SYNTAX.with_text("Syntax: BDAT <size> [LAST]"))
    size = int(size_text)
    if len(parts) == 1:
        return size, False
    if len(parts) == 2 and parts[1].upper() == "LAST":
        return size, True
    proto_error = ProtocolError(wire.PARAM_SYNTAX.with_text("Syntax: BDAT <size> [LAST]"))
    proto_error.bdat_size = size  # type: ignore[attr-defined]
    raise proto_error


def _discard_bdat(proto: SmtpServerProtocol, verb: str, arg: str) -> None:
    """A refused BDAT: its octets follow anyway and must be read past (RFC 3030 §2)."""
    if verb != "BDAT":
        return
    try:
        size, _ = _parse_bdat(arg)
    except ProtocolError as exc:
        size = getattr(exc, "bdat_size", -1)
    if size >= 0:
        proto._start_discard(size)


def _bdat(proto: SmtpServerProtocol, arg: str) -> ev.Event | object:
    try:
        size, last = _parse_bdat(arg)
    except ProtocolError:
        _discard_bdat(proto, "BDAT", arg)
        raise
    transaction = proto._transaction
    assert transaction is not None
    if transaction.used_data or not proto.esmtp:
        proto._start_discard(size)
        raise ProtocolError(wire.BAD_SEQUENCE)
    reader = ChunkReader(
        size,
        last=last,
        message_size=transaction.message_size,
        max_size=proto.max_message_size,
    )
    if transaction.oversize:
        reader.oversize = True
    proto._reader = reader
    proto.state = State.DATA
    return proto._read_body()  # the chunk's octets may already be buffered


def _rset(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    _no_args(arg, "RSET")
    return ev.Rset()


def _noop(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    return ev.Noop()


def _quit(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    _no_args(arg, "QUIT")
    return ev.Quit()


def _help(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    return ev.Help(arg or None)


def _vrfy(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    if not proto.features.vrfy:
        raise ProtocolError(wire.NOT_IMPLEMENTED.with_text("VRFY command is disabled"))
    if not arg:
        raise ProtocolError(wire.PARAM_SYNTAX.with_text("VRFY needs a user name or address"))
    return ev.Vrfy(arg)


def _expn(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    if not proto.features.expn:
        raise ProtocolError(wire.NOT_IMPLEMENTED.with_text("EXPN command is disabled"))
    if not arg:
        raise ProtocolError(wire.PARAM_SYNTAX.with_text("EXPN needs a list name"))
    return ev.Expn(arg)


def _starttls(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    if proto.tls_active:
        raise ProtocolError(wire.TLS_ALREADY_ACTIVE)
    _no_args(arg, "STARTTLS")
    return ev.StartTls()


def _auth(proto: SmtpServerProtocol, arg: str) -> ev.Event:
    if not proto.features.auth_mechanisms:
        raise ProtocolError(wire.NOT_IMPLEMENTED)
    if not proto.esmtp:
        raise ProtocolError(wire.NEED_EHLO)
    if proto.authenticated:
        raise ProtocolError(wire.ALREADY_AUTHENTICATED)
    mechanism, _, initial = arg.partition(" ")
    mechanism = mechanism.upper()
    if not mechanism or " " in initial:
        raise ProtocolError(wire.PARAM_SYNTAX.with_text("Syntax: AUTH mechanism [response]"))
    configured = {mech.upper() for mech in proto.features.auth_mechanisms}
    if mechanism not in configured:
        raise ProtocolError(wire.AUTH_MECHANISM_UNKNOWN)
    if not proto._mechanism_usable(mechanism):
        raise ProtocolError(wire.ENCRYPTION_REQUIRED)
    response: bytes | None = None
    if initial == "=":
        response = b""
    elif initial:
        try:
            response = binascii.a2b_base64(initial.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(wire.AUTH_BAD_BASE64) from None
    proto._auth = AuthExchange(mechanism, resume=proto.state)
    return ev.AuthStart(mechanism, response)


_HANDLERS: dict[str, Callable[[SmtpServerProtocol, str], ev.Event | object]] = {
    "EHLO": _ehlo,
    "HELO": _helo,
    "MAIL": _mail,
    "RCPT": _rcpt,
    "DATA": _data,
    "BDAT": _bdat,
    "RSET": _rset,
    "NOOP": _noop,
    "QUIT": _quit,
    "HELP": _help,
    "VRFY": _vrfy,
    "EXPN": _expn,
    "STARTTLS": _starttls,
    "AUTH": _auth,
}


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _capitalise(message: str) -> str:
    return message[:1].upper() + message[1:]


# -- replies -----------------------------------------------------------------


def advance(proto: SmtpServerProtocol, pending: ev.Event, reply: wire.Reply) -> None:
    """Apply the server's ``reply`` to the ``pending`` event."""
    ok = reply.is_positive
    if isinstance(pending, (ev.Ehlo, ev.Helo)):
        if ok:
            proto._reset_transaction()
            proto.state = State.GREETED
            proto.esmtp = isinstance(pending, ev.Ehlo)
            proto.helo_name = pending.name
    elif isinstance(pending, ev.MailFrom):
        if ok:
            proto._transaction = Transaction(pending)
            proto.state = State.MAIL
    elif isinstance(pending, ev.RcptTo):
        if ok and proto._transaction is not None:
            proto._transaction.recipients += 1
            proto.state = State.RCPT
    elif isinstance(pending, ev.DataStart):
        if reply.code == 354:
            proto._reader = DotReader(
                max_size=proto.max_message_size, max_line_length=proto.max_data_line_length
            )
            proto.state = State.DATA
        elif ok:
            raise SmtpUsageError("DATA is answered 354 or refused")
    elif isinstance(pending, ev.DataEnd):
        proto._reset_transaction()
    elif isinstance(pending, ev.BdatEnd):
        _advance_bdat(proto, pending, ok)
    elif isinstance(pending, ev.Rset):
        proto._reset_transaction()
    elif isinstance(pending, ev.Quit):
        proto._close()
    elif isinstance(pending, ev.StartTls):
        if reply.code == 220:
            proto.discarded_after_starttls += proto.buffered
            proto._buf = bytearray()
            proto._pos = 0
            proto.state = State.TLS_HANDSHAKE
        elif ok:
            raise SmtpUsageError("STARTTLS is answered 220 or refused")
    elif isinstance(pending, (ev.AuthStart, ev.AuthResponse)):
        _advance_auth(proto, reply)
    elif isinstance(pending, ev.AuthCancelled):
        proto._end_auth()


def _advance_bdat(proto: SmtpServerProtocol, pending: ev.BdatEnd, ok: bool) -> None:
    if ok and not pending.last and not pending.oversize:
        proto.state = State.BDAT
        return
    # The last chunk was answered, or a chunk was refused: the transaction is over.
    proto._transaction = None
    proto.state = State.GREETED


def _advance_auth(proto: SmtpServerProtocol, reply: wire.Reply) -> None:
    exchange = proto._auth
    assert exchange is not None
    if reply.code == 334:
        proto.state = State.AUTH
        return
    if reply.is_intermediate:
        raise SmtpUsageError("AUTH is answered 334, 235 or refused")
    if reply.is_positive:
        if exchange.result is None or not exchange.result[0]:
            raise SmtpUsageError("call auth_done(True, identity) before replying 2xx to AUTH")
        proto.authenticated = True
        proto.auth_identity = exchange.result[1]
    proto._end_auth()
