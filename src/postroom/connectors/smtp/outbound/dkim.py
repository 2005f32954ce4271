"""DKIM (manual 5.4.4; RFC 6376, RFC 8463): selectors of a domain, and signing outbound mail.

**Selectors.** A selector is a key pair whose public half is published as a DNS TXT
record at ``SELECTOR._domainkey.DOMAIN``. The *active* selector of a domain lives in
the domain's own options (``dkim.selector``, ``dkim.private_key`` (a secret option,
sealed by the directory under the server key), ``dkim.algorithm``, ``dkim.key_size``,
``dkim.test_mode``, ``dkim.notes`` ...), so ``postroom domain set`` and the web admin edit
the same record. The manual keeps deactivated selectors "available for verifying
against previously sent messages, so long as their entry remains in the DNS": those
are moved by :func:`rotate_selector` into the small table ``dkim_retired_selector``
(created here, IF NOT EXISTS), private key sealed with ``store.secrets`` under
``dkim:DOMAIN:SELECTOR``, until :func:`delete_selector` removes them. So the record of
an old key can still be printed while DNS is switched over.

**Signing.** :func:`sign_message` prepends a ``DKIM-Signature`` header made with the
domain's active selector when the server switch ``dkim.enabled`` and the domain's
``dkim.enabled`` (Sign outgoing messages) and ``dkim.selector_active`` are on; otherwise
(or when the domain is not ours, or has no key) the message comes back unchanged. The
domain is the one given, exactly: the manual configures DKIM per domain object and a
sub-domain is its own domain in the directory, so no parent's key is used.

Canonicalization (``c=``, header and body separately), the body hash length limit
(``l=``; a limit of 0 with the limit on covers the whole body, like a plain ``l=``) and
the user identity (``i=``, when ``dkim.include_user_identity`` is on and the sender is
in the domain) follow the domain options. Test mode is a flag of the key record
(``t=y``, RFC 6376 §3.6.1), so it shows in the printed DNS record, not in the
signature. Signed header fields: RFC 6376 §5.4.1's recommended list (those present in
the message), with ``From`` signed once more than it occurs so none can be added; the
manual has no option for the list.

How: dkimpy's parser and canonicalization (``dkim.rfc822_parse``,
``CanonicalizationPolicy``, ``dkim.hash_headers``) produce the header hash; the
signature itself is computed with ``cryptography`` (RSA PKCS#1 v1.5 over the SHA-256
digest, Ed25519 over the digest as RFC 8463 §3 says). dkimpy signs RSA in pure Python,
about 100 messages/s for 5 KB (DEPENDENCIES.md); ``cryptography`` is ten times faster.
Tests verify every signature with dkimpy's ``dkim.verify``.

Cost on the hot path: one small read of the directory generation per message (the
domain lookup and the decrypted, parsed key are cached per process until the directory
changes; a key is parsed once even when several threads sign at once), the RSA or
Ed25519 operation, and the hashing. dkimpy's parser splits the whole message into
lines and its relaxed body canonicalization runs three regular expressions over the
body; here only the header block goes through its parser, and a body with no tab, no
double space and no space before a line end (what the relaxed rules would change) is
taken as it is — the same bytes dkimpy would produce, at a fraction of the cost.

Untrusted input: the message (hostile headers are hashed, never interpreted;
a message dkimpy cannot parse goes out unsigned, logged); selectors and domain names
from the administrator are checked before anything is written (field named).

Known limits: the message is signed in memory (the caller holds it anyway); the
obsolete ``g=`` granularity tag (RFC 4871, dropped by RFC 6376) is not published.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import (
    CanonicalizationPolicy,
    Relaxed,
    correct_empty_body,
    strip_trailing_lines,
)

from postroom.store import addresses
from postroom.store.directory import DirectoryError, Domain
from postroom.store.directory_cache import CachedDirectory

if TYPE_CHECKING:
    from postroom.store.store import Store

log = logging.getLogger("postroom.smtp.dkim")

ALGORITHMS = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}
"""Command-line names -> the ``dkim.algorithm`` domain option values."""
KEY_TYPES = {"rsa-sha256": "rsa", "ed25519-sha256": "ed25519"}
RSA_BITS = (1024, 2048, 3072, 4096)
SIGNED_HEADERS = tuple(h.decode() for h in dkim.DKIM.SHOULD)
"""RFC 6376 §5.4.1: header fields to sign when present."""
_SELECTOR = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
                       r"[a-z0-9])?)*")



# -- keys and records -----------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """One key pair of a domain, as an administrator sees it."""

    domain: str
    selector: str
    algorithm: str        # rsa-sha256 | ed25519-sha256
    key_size: int         # bits (256 for ed25519)
    public_key: str       # the p= value
    active: bool
    test_mode: bool
    notes: str

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record(self) -> str:
        return dns_record(self.algorithm, self.public_key, self.test_mode, self.notes)

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "selector": self.selector, "algorithm": self.algorithm,
                "key_size": self.key_size, "active": self.active, "test_mode": self.test_mode,
                "record_name": self.record_name, "record": self.record}


def generate_key(algorithm: str, bits: int = 2048) -> tuple[str, str]:
    """A new key pair: (PKCS#8 PEM private key, base64 public key for ``p=``)."""
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa-sha256":
        if bits not in RSA_BITS:
            raise DirectoryError("bits", f"RSA key size must be one of {RSA_BITS}, got {bits}")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif algorithm == "ed25519-sha256":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise DirectoryError("algorithm", f"expected rsa or ed25519, got {algorithm!r}")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    return pem, public_key_text(key)


def public_key_text(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    """``p=``: SubjectPublicKeyInfo DER for RSA (RFC 6376 §3.6.1), raw 32 bytes for
    Ed25519 (RFC 8463 §4), base64."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(raw).decode("ascii")


def dns_record(algorithm: str, public_key: str, test_mode: bool = False, notes: str = "") -> str:
    """The TXT record value: ``v=DKIM1; k=rsa; [t=y; ][n=...; ]p=...``."""
    tags = ["v=DKIM1", f"k={KEY_TYPES.get(algorithm, 'rsa')}"]
    if test_mode:
        tags.append("t=y")
    if notes:
        tags.append("n=" + _qp(notes.encode("utf-8")))
    tags.append(f"p={public_key}")
    return "; ".join(tags)


def _qp(data: bytes) -> str:
    """DKIM-quoted-printable (RFC 6376 §2.11): safe characters as they are, others =XX."""
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b not in (0x3B, 0x3D) else f"={b:02X}"
                   for b in data)


def load_private_key(pem: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError("DKIM keys are RSA or Ed25519")
    return key


# -- selector administration (CLI, web admin) --------------------------------------------


def check_selector(text: str) -> str:
    """A selector is one or more DNS labels (RFC 6376 §3.1); returned lower case."""
    name = (text or "").strip().lower()
    if not name or len(name) > 63 * 2 or not _SELECTOR.fullmatch(name):
        raise DirectoryError("selector", f"expected DNS labels (letters, digits, hyphens, "
                             f"dots), got {text!r}")
    return name


def check_algorithm(text: str) -> str:
    name = (text or "").strip().lower()
    if name in ALGORITHMS:
        return ALGORITHMS[name]
    if name in KEY_TYPES:
        return name
    raise DirectoryError("algorithm", f"expected rsa or ed25519, got {text!r}")


def _domain(store: Store, name: str) -> Domain:
    return store.directory.get_domain(addresses.ascii_domain(name))


def _table(store: Store) -> sqlite3.Connection:
    """The connection to read ``dkim_retired_selector`` (migration 0006) with."""
    return store.conn


def _active(domain: Domain) -> Selector | None:
    options = domain.options
    pem = options.get("dkim.private_key") or ""
    name = options.get("dkim.selector") or ""
    if not pem or not name:
        return None
    algorithm = options.get("dkim.algorithm") or "rsa-sha256"
    try:
        key = load_private_key(pem)
    except ValueError:
        log.warning("domain %s: dkim.private_key is not a usable key", domain.name)
        return None
    size = key.key_size if isinstance(key, rsa.RSAPrivateKey) else 256
    return Selector(domain.name, name, algorithm, size, public_key_text(key),
                    bool(options.get("dkim.selector_active", True)),
                    bool(options.get("dkim.test_mode")), options.get("dkim.notes") or "")


def _retired(store: Store, domain: str | None = None) -> list[Selector]:
    sql = ("SELECT domain, selector, algorithm, key_size, public_key, test_mode, notes "
           "FROM dkim_retired_selector")
    rows = (_table(store).execute(sql + " WHERE domain = ? ORDER BY retired_at", (domain,))
            if domain else _table(store).execute(sql + " ORDER BY domain, retired_at"))
    return [Selector(r["domain"], r["selector"], r["algorithm"], r["key_size"],
                     r["public_key"], False, bool(r["test_mode"]), r["notes"]) for r in rows]


def list_selectors(store: Store, domain: str | None = None) -> list[Selector]:
    """Every selector (of one domain): the active one first, then the retired ones."""
    domains = [_domain(store, domain)] if domain else store.directory.list_domains()
    found: list[Selector] = []
    for record in domains:
        active = _active(record)
        if active is not None:
            found.append(active)
        found += _retired(store, record.name)
    return found


def _taken(store: Store, domain: Domain, selector: str) -> None:
    active = _active(domain)
    if (active is not None and active.selector == selector) or any(
            s.selector == selector for s in _retired(store, domain.name)):
        raise DirectoryError("selector", f"{domain.name} already has a selector {selector!r}")


def create_selector(store: Store, domain: str, selector: str, algorithm: str = "rsa",
                    bits: int = 2048, *, test_mode: bool = False) -> Selector:
    """Make the first key of ``domain`` and turn signing on; see :func:`rotate_selector`
    for a domain that already has one."""
    record = _domain(store, domain)
    name, algorithm = check_selector(selector), check_algorithm(algorithm)
    if _active(record) is not None:
        raise DirectoryError("selector", f"{record.name} already has the selector "
                             f"{record.options.get('dkim.selector')!r}; use "
                             "'domain dkim rotate' to replace it")
    _taken(store, record, name)
    return _activate(store, record, name, algorithm, bits, test_mode)


def rotate_selector(store: Store, domain: str, selector: str, algorithm: str | None = None,
                    bits: int | None = None) -> Selector:
    """Make a new key the active one; the old one is kept (retired) until deleted."""
    record = _domain(store, domain)
    name = check_selector(selector)
    old = _active(record)
    if old is None:
        raise DirectoryError("domain", f"{record.name} has no DKIM key yet; use "
                             "'domain dkim create'")
    algorithm = check_algorithm(algorithm) if algorithm else old.algorithm
    bits = bits or (old.key_size if old.algorithm == "rsa-sha256" else 2048)
    _taken(store, record, name)
    pem = record.options["dkim.private_key"]
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO dkim_retired_selector(domain, selector, algorithm, key_size, "
            "public_key, private_key, test_mode, notes, retired_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (record.name, old.selector, old.algorithm, old.key_size, old.public_key,
             store.secrets.encrypt(pem, f"dkim:{record.name}:{old.selector}"),
             int(old.test_mode), old.notes, time.time()))
        return _activate(store, record, name, algorithm, bits, old.test_mode)


def _activate(store: Store, record: Domain, name: str, algorithm: str, bits: int,
              test_mode: bool) -> Selector:
    pem, _ = generate_key(algorithm, bits)
    updated = store.directory.update_domain(record.name, {
        "dkim.enabled": True, "dkim.selector": name, "dkim.private_key": pem,
        "dkim.algorithm": algorithm, "dkim.selector_active": True, "dkim.test_mode": test_mode,
        **({"dkim.key_size": str(bits)} if algorithm == "rsa-sha256" else {}),
    })
    active = _active(updated)
    assert active is not None
    return active


def delete_selector(store: Store, domain: str, selector: str) -> Selector:
    """Forget a selector. Deleting the active one stops signing for the domain."""
    record = _domain(store, domain)
    name = check_selector(selector)
    active = _active(record)
    if active is not None and active.selector == name:
        store.directory.update_domain(record.name, {
            "dkim.enabled": False, "dkim.selector": "", "dkim.private_key": ""})
        return active
    for retired in _retired(store, record.name):
        if retired.selector == name:
            with store.transaction() as conn:
                conn.execute("DELETE FROM dkim_retired_selector WHERE domain = ? AND "
                             "selector = ?", (record.name, name))
            return retired
    raise DirectoryError("selector", f"{record.name} has no selector {name!r}")


# -- signing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SigningKey:
    selector: bytes
    algorithm: str
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    canonicalization: CanonicalizationPolicy
    length_limit: int | None   # None: no l=; 0: the whole body
    identity: bool


class _Signer:
    """Per store: the domain lookups (cached until the directory changes) and parsed keys."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.directory = CachedDirectory(store)
        self.keys: dict[tuple[str, str, str], Any] = {}
        self.lock = threading.Lock()

    def key_for(self, domain: str) -> _SigningKey | None:
        self.directory.refresh()
        try:
            record = self.directory.get_domain(domain)
        except DirectoryError:
            return None
        options = record.options
        pem = options.get("dkim.private_key") or ""
        selector = options.get("dkim.selector") or ""
        if not (options.get("dkim.enabled") and options.get("dkim.selector_active", True)
                and pem and selector):
            return None
        cache_key = (record.name, selector, pem)
        key = self.keys.get(cache_key)
        if key is None:
            with self.lock:     # parsing a key takes milliseconds: once, not per thread
                key = self.keys.get(cache_key)
                if key is None:
                    try:
                        key = load_private_key(pem)
                    except ValueError:
                        log.warning("domain %s: dkim.private_key is not a usable key; "
                                    "not signing", record.name)
                        return None
                    if len(self.keys) > 1000:
                        self.keys.clear()
                    self.keys[cache_key] = key
        algorithm = options.get("dkim.algorithm") or "rsa-sha256"
        if KEY_TYPES.get(algorithm) != ("rsa" if isinstance(key, rsa.RSAPrivateKey)
                                        else "ed25519"):
            algorithm = "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"
        policy = CanonicalizationPolicy.from_c_value(
            f"{options.get('dkim.canonicalization.header') or 'relaxed'}/"
            f"{options.get('dkim.canonicalization.body') or 'relaxed'}".encode())
        limit = (int(options.get("dkim.body_length_limit") or 0)
                 if options.get("dkim.body_length_limit.enabled") else None)
        return _SigningKey(selector.encode("ascii"), algorithm, key, policy, limit,
                           bool(options.get("dkim.include_user_identity")))


_signers: weakref.WeakKeyDictionary[Any, _Signer] = weakref.WeakKeyDictionary()
_signers_lock = threading.Lock()


def _signer(store: Store) -> _Signer:
    signer = _signers.get(store)
    if signer is None:
        with _signers_lock:
            signer = _signers.get(store)
            if signer is None:
                signer = _signers[store] = _Signer(store)
    return signer


def sign_message(store: Store, message: bytes, sender_domain: str, *,
                 identity: str | None = None, now: float | None = None) -> bytes:
    """``message`` with a DKIM-Signature header prepended, or unchanged (see the module
    docstring for when). ``sender_domain`` is the domain to sign for (the From header's
    domain, or the envelope sender's); ``identity`` the sending user's address, used for
    ``i=`` when the domain's ``dkim.include_user_identity`` is on."""
    if not message or not store.settings.get("dkim.enabled"):
        return message
    try:
        domain = addresses.ascii_domain(sender_domain)
    except DirectoryError:
        return message
    signing = _signer(store).key_for(domain)
    if signing is None:
        return message
    try:
        header = signature_header(message, domain, signing, identity, now)
    except dkim.DKIMException as exc:
        log.warning("not DKIM-signing a message from %s: %s", domain, exc)
        return message
    return header + message


def signature_header(message: bytes, domain: str, signing: _SigningKey,
                     identity: str | None = None, now: float | None = None) -> bytes:
    """The ``DKIM-Signature: ...`` field (with its line end) for ``message``."""
    first = message.find(b"\n")
    linesep = b"\r\n" if first > 0 and message[first - 1:first] == b"\r" else b"\n"
    headers, body = _parse(message)
    policy = signing.canonicalization
    canonical_body = _canonical_body(policy, body)
    if signing.length_limit is not None:
        length = len(canonical_body)
        if signing.length_limit:
            length = min(length, signing.length_limit)
        canonical_body = canonical_body[:length]
    present = {name.lower() for name, _ in headers}
    include = [name.encode() for name in SIGNED_HEADERS if name.encode() in present]
    if b"from" not in present:
        raise dkim.MessageFormatError("no From header field")
    include.append(b"from")  # over-sign From: no second From can be added (§5.4.2)
    fields: list[tuple[bytes, bytes]] = [
        (b"v", b"1"), (b"a", signing.algorithm.encode()), (b"c", policy.to_c_value()),
        (b"d", domain.encode("ascii")), (b"s", signing.selector),
        (b"t", str(int(time.time() if now is None else now)).encode()),
    ]
    if signing.identity and identity:
        local, _, at_domain = identity.rpartition("@")
        try:
            ascii_at = addresses.ascii_domain(at_domain)
        except DirectoryError:
            ascii_at = ""
        if local and (ascii_at == domain or ascii_at.endswith("." + domain)):
            fields.append((b"i", (_qp(local.encode("utf-8")) + "@" + ascii_at).encode()))
    if signing.length_limit is not None:
        fields.append((b"l", str(len(canonical_body)).encode()))
    fields += [(b"h", b":".join(include)),
               (b"bh", base64.b64encode(hashlib.sha256(canonical_body).digest())),
               (b"b", b"0" * 60)]  # placeholder: puts b= on a line of its own when folded
    folded = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(b"DKIM-Signature"),
                       linesep=b"\r\n")
    unsigned = dkim.RE_BTAG.sub(b"\\1", folded)
    hasher = hashlib.sha256()
    dkim.hash_headers(hasher, policy, policy.canonicalize_headers(headers), include,
                      (b"DKIM-Signature", b" " + unsigned), None)
    digest = hasher.digest()
    if isinstance(signing.key, rsa.RSAPrivateKey):
        signature = signing.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    else:
        signature = signing.key.sign(digest)
    encoded = base64.b64encode(signature)
    chunks = [encoded[i:i + 72] for i in range(0, len(encoded), 72)]
    value = unsigned + b"\r\n ".join(chunks)
    return b"DKIM-Signature: " + value.replace(b"\r\n", linesep) + linesep


def _parse(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """``dkim.rfc822_parse(message)``, with only the header block split into lines.

    The header block ends at the first empty line (LF or CRLF line ends, as dkimpy
    splits); the body is returned with CRLF line ends, as dkimpy joins it."""
    ends = [at for at in (message.find(b"\n\n"), message.find(b"\n\r\n")) if at >= 0]
    if not ends or message.startswith((b"\n", b"\r\n")):
        return dkim.rfc822_parse(message)   # no body, or no header: as dkimpy does it
    end = min(ends)
    headers, _ = dkim.rfc822_parse(message[:end + 1])
    body = message[end + (3 if message.startswith(b"\r\n", end + 1) else 2):]
    if body.count(b"\n") != body.count(b"\r\n"):
        body = _LINE_END.sub(b"\r\n", body)
    return headers, body


_LINE_END = re.compile(rb"\r?\n")


def _canonical_body(policy: CanonicalizationPolicy, body: bytes) -> bytes:
    """``policy.canonicalize_body(body)``; for relaxed, no regular expressions when the
    body has nothing they would change (no tab, no double space, no trailing space)."""
    if policy.body_algorithm is Relaxed and b"\t" not in body and b"  " not in body \
            and b" \r\n" not in body:
        return correct_empty_body(strip_trailing_lines(body))
    return policy.canonicalize_body(body)
