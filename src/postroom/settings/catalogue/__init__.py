"""The server settings catalogue: every server-wide option of the manual, one module per component.

Each module exposes ``OPTIONS`` (a list of :class:`~postroom.settings.model.Option`)
declared with :func:`postroom.settings.catalogue.declare.opt`. The declarations
are Python source, not read from the manual's option inventory at run time; a test
checks that every server-scope option of that inventory has a declaration here.

Not declared: the Windows-only options (IIS, registry, services control panel) and
the manual's filter criteria and actions (7.4.2, 7.4.3), which are data of each
global filter rather than server settings.
"""

from __future__ import annotations

from importlib import import_module

from postroom.settings.model import Option

MODULES: tuple[str, ...] = (
    "localhost", "messaging_manager", "installer", "dkim", "dns", "mta",
    "smtp", "smtp_security", "smtp_delivery", "smtp_antispam",
    "postoffice_connector", "list_server", "pop_retrieval",
    "pop3", "imap", "web", "webmail", "webadmin", "sync", "management",
    "filters", "antivirus", "bayesian", "utilities",
)


def all_options() -> list[Option]:
    """Every option of every catalogue module, in module order."""
    options: list[Option] = []
    for name in MODULES:
        options.extend(import_module(f"{__name__}.{name}").OPTIONS)
    return options

