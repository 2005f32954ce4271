"""The ``pop3`` service of ``postroom serve`` (manual 6.3.4): listeners, logins, logs.

The start-up shared with IMAP (logs, TLS, host name, login checker, store pool,
accept processes) is :class:`~postroom.services.client_service.ClientService`; this
class adds the POP3 session context (:class:`~.session.Pop3Context`) and listeners
(:func:`.server.listener_specs`). Policies read their settings for every connection
and command, so only listener addresses and ports need a restart.

The host name in the greeting is ``smtp.general.local_domain_name`` (the server's
mail name), else the certificate's name, else the system's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from postroom.net.listeners import ListenerSpec
from postroom.services.accept_processes import Role
from postroom.services.client_service import ClientService
from postroom.services.pop3.server import Pop3Listeners, listener_specs
from postroom.services.pop3.session import Pop3Context


class Pop3Service(ClientService):
    """``postroom serve pop3``."""

    name = "pop3"
    log_folder = "POP3"
    w3c_directory_setting = "pop3.logging.w3c_directory"

    def make_listeners(self, role: Role, pool: ThreadPoolExecutor) -> Pop3Listeners:
        assert self.logs is not None and self.logins is not None
        ctx = Pop3Context(store=self.store, logins=self.logins, logs=self.logs, tls=self.tls,
                          hostname=self.hostname, store_pool=pool,
                          connection_ids=self.accept.connection_id,
                          failure_delay=self.auth_failure_delay, processes=role.count)
        return Pop3Listeners(ctx)

    def listener_specs(self) -> list[ListenerSpec]:
        return listener_specs(self.store.settings)
