"""The automatic outbound white list (manual 6.2.3.12): remember the hosts we deliver to.

The manual: "MailEnable can also automatically whitelist IP addresses to which it has
addressed outbound e-mail ... it makes the assumption that if you send to an IP address
then that IP is a valid mail server and incoming email from that IP should not be
blocked." So what is remembered is the *IP address of the host that accepted our
message* (an MX, or the smart host), not the recipient's address: mail from
``bob@example.org`` may come from any of many hosts, but the one we handed mail to is
a mail server. The list is the server option ``smtp.outbound_whitelist.addresses`` that
the manual shows as an editable list ("Outbound white list (Add/Remove)"), so the
administrator sees and prunes what was learnt with ``postroom settings``; it only
counts while ``smtp.outbound_whitelist.enabled`` is on, and nothing is learnt while it
is off.

The inbound side is the existing white-list check (:func:`.access.is_whitelisted`,
used by :class:`.chain.InboundPolicy`): a white-listed client IP skips the checks the
manual names, DNS blacklists and SPF (extra checks marked ``bypassed_by_whitelist``)
and automatic blocking (the failed-command auto deny, the reported-IP refusal and the
per-IP connection and recipient limits).

Call :func:`remember_peer` from the delivery agent after a remote host accepted a
message (250 to the end of DATA for at least one recipient). It is cheap when the IP
is already known (a set lookup in this process); a new IP costs one settings write
(a transaction that also bumps the settings generation, which every service picks up
within the supervisor's reload interval).

Untrusted input: the peer IP comes from our own socket (``getpeername``), but is
checked anyway; anything that is not an IP address is ignored. Known limits: the list
stops growing at :data:`MAX_ENTRIES` (a warning is logged, manual entries count too),
so that a server delivering to the whole Internet does not grow an unbounded setting.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import weakref
from typing import TYPE_CHECKING

from postroom.connectors.smtp.policy.access import ip_in

if TYPE_CHECKING:
    from postroom.store.store import Store

log = logging.getLogger("postroom.smtp.autowhitelist")

ENABLED = "smtp.outbound_whitelist.enabled"
ADDRESSES = "smtp.outbound_whitelist.addresses"
MAX_ENTRIES = 10_000

# store -> IPs this process has seen on the list (an IP an administrator removes is not
# learnt again until the process restarts: removing it was deliberate)
_known: weakref.WeakKeyDictionary[Store, set[str]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _normal(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(str(ip).strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


def remember_peer(store: Store, ip: str) -> bool:
    """Add ``ip`` (a host that accepted our mail) to the outbound white list.

    Returns True when the list changed; False when the feature is off, the IP is
    already on it (or covered by a range on it), is not an IP, or the list is full.
    """
    settings = store.settings
    if not settings.get(ENABLED):
        return False
    address = _normal(ip)
    if address is None:
        return False
    with _lock:
        known = _known.setdefault(store, set())
    if address in known:
        return False
    if ip_in(settings.get(ADDRESSES), address):
        with _lock:
            known.add(address)
        return False
    with store.transaction():
        settings.reload_if_changed()  # another process may have added it meanwhile
        current = list(settings.get(ADDRESSES))
        if ip_in(current, address):
            added = False
        elif len(current) >= MAX_ENTRIES:
            log.warning("outbound white list is full (%d entries): %s not added",
                        MAX_ENTRIES, address)
            added = False
        else:
            settings.set(ADDRESSES, [*current, address])
            added = True
    with _lock:
        known.add(address)
    if added:
        log.info("outbound white list: added %s", address)
    return added


def is_remembered(store: Store, ip: str) -> bool:
    """Whether inbound mail from ``ip`` counts as from the outbound white list."""
    address = _normal(ip)
    return (address is not None and bool(store.settings.get(ENABLED))
            and ip_in(store.settings.get(ADDRESSES), address))
