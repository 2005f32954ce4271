"""Bayesian filter (manual 7.7): dictionary, calculation method and auto-training.

The ``bayesian.mespamcmd.*`` rows are operations of the manual's MESPAMCMD tool
(`postroom spam`); they are listed so that every manual option has a declaration.
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("bayesian.autotraining.enabled", "bool", False, "7.7.1.2",
        "Enable autotraining: Learn from honeypot/ham traffic in memory; requires a Bayesian "
        "criterion filter; blocks manual mespamcmd updates."),
    opt("bayesian.autotraining.spam_honeypot_addresses", "list", [], "7.7.1.2",
        "Spam Honeypot Email Addresses: Addresses receiving only spam, used as spam samples."),
    opt("bayesian.autotraining.ham_addresses", "list", [], "7.7.1.2",
        "Ham Addresses: Addresses whose mail is sampled as legitimate."),
    opt("bayesian.process_html", "bool", True, "7.7.2",
        "Options (Process HTML content in Messages): Tokenize HTML parts as well as plain "
        "text (also shown on auto-training tab, 7.7.1.2)."),
    opt("bayesian.dictionary", "path", "bayesian/default.tab", "7.7.2",
        "Dictionary: Dictionary file; .TAB or .XML format chosen by extension. Relative paths"
        " are under the data directory; .tab or .xml."),
    opt("bayesian.spam_calculation_method", "enum", "all_tokens", "7.7.2",
        "Spam Calculation method: Aggregate most frequent tokens' percentiles, all tokens "
        "(recommended), or only tokens in extreme percentiles.",
        choices=("frequent_tokens", "all_tokens", "extreme_tokens")),
    opt("bayesian.mespamcmd.create", "bool", False, "7.7.5",
        "MESPAMCMD -c: Create a dictionary from Spam and NoSpam folders (short paths only). "
        "This is an operation of the MESPAMCMD utility (`postroom spam`); listed for "
        "completeness."),
    opt("bayesian.mespamcmd.verify", "bool", False, "7.7.5",
        "MESPAMCMD -v: Report spam probability for every message in a folder. This is an "
        "operation of the MESPAMCMD utility (`postroom spam`); listed for completeness."),
    opt("bayesian.mespamcmd.score", "bool", False, "7.7.5",
        "MESPAMCMD -s: Score one message file against a dictionary. This is an operation of "
        "the MESPAMCMD utility (`postroom spam`); listed for completeness."),
    opt("bayesian.mespamcmd.merge", "bool", False, "7.7.5",
        "MESPAMCMD -m: Append Spam/NoSpam folder contents to an existing dictionary. This is "
        "an operation of the MESPAMCMD utility (`postroom spam`); listed for completeness."),
    opt("bayesian.mespamcmd.reload", "bool", False, "7.7.5",
        "MESPAMCMD -r: Tell the running filter to reload its dictionary. This is an operation"
        " of the MESPAMCMD utility (`postroom spam`); listed for completeness."),
    opt("bayesian.mespamcmd.prune", "bool", False, "7.7.5",
        "MESPAMCMD -p: Drop rare or uninformative tokens and rewrite the dictionary. This is "
        "an operation of the MESPAMCMD utility (`postroom spam`); listed for completeness."),
]
