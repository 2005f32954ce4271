"""A mailbox's own e-mail address, for mail the connector sends on its behalf.

Manual 6.2.4.2 ("Remail from mailbox address"): "the default email address for the
mailbox. If a default address has not been set, the first address found for the
mailbox will be used." There is no separate default in our directory, so: the
address the sender used (when it maps to the mailbox), else the first address of
the address map that targets the mailbox, else ``mailbox@postoffice``.

Each function reads the directory it is given (the connector passes its
:class:`~postroom.store.directory_cache.CachedDirectory`), else the store's.
"""

from __future__ import annotations

from postroom.store import Store
from postroom.store.addresses import AddressError, parse_connector
from postroom.store.directory import Directory, DirectoryError, Mailbox


def plain(connector_address: str) -> str:
    """``[SMTP:a@b]`` -> ``a@b``; other forms are returned as given."""
    text = connector_address.strip()
    if text.upper().startswith("[SMTP:") and text.endswith("]"):
        return text[6:-1]
    return text


def mailbox_addresses(store: Store, box: Mailbox, directory: Directory | None = None,
                      ) -> list[str]:
    """Every SMTP address mapped to the mailbox, in the directory's order."""
    try:
        mapped = (directory or store.directory).list_addresses(target=box.connector_address)
    except DirectoryError:
        return []
    result = []
    for entry in mapped:
        try:
            parsed = parse_connector(entry.address)
        except AddressError:
            continue
        if parsed.connector == "SMTP" and parsed.local != "*":
            result.append(f"{parsed.local}@{parsed.domain}")
    return result


def mailbox_address(store: Store, box: Mailbox, used: str | None = None,
                    directory: Directory | None = None) -> str:
    addresses = mailbox_addresses(store, box, directory)
    if used and used.lower() in (a.lower() for a in addresses):
        return used
    return addresses[0] if addresses else box.login


def is_own_address(store: Store, box: Mailbox, address: str,
                   directory: Directory | None = None) -> bool:
    """Does ``address`` lead back to this mailbox (directly or by catch-all)?"""
    if not address:
        return False
    if address.lower() == box.login.lower():
        return True
    try:
        resolved = (directory or store.directory).resolve(f"[SMTP:{address}]")
    except (DirectoryError, ValueError):
        return False
    return resolved is not None and resolved.target.lower() == box.connector_address.lower()
