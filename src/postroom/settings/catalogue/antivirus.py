"""Antivirus agents (manual 7.6 and 11.1.1): the external scanner run on each message.

The scanner is a command-line program (ClamAV's clamscan by default) given the
message in a scratch directory; its exit code decides. Message content is hostile
input to that program, so it runs with the scratch directory only. Several agents
may be defined in the manual; Postroom keeps one agent's settings here (per-agent
records can follow when more are needed).
"""

from __future__ import annotations

from postroom.settings.catalogue.declare import opt

OPTIONS = [
    opt("antivirus.agent.selection", "enum", "clamav", "7.6.2",
        "Available antivirus applications: Preset scanner: ClamAV, F-Prot, Sophos, McAfee, "
        "Norton Corp 7.6, Norman, Panda, AVG (or custom).",
        choices=(
            "clamav", "f-prot", "sophos", "mcafee", "norton", "norman", "panda", "avg", "custom",
        )),
    opt("antivirus.enabled", "bool", False, "7.6.3",
        "Enable antivirus/filter support: Master switch for all antivirus and add-on filter "
        "agents."),
    opt("antivirus.agent.enabled", "bool", False, "7.6.3",
        "Enable selected antivirus/filter: Use this agent for scans; several may be enabled "
        "at once."),
    opt("antivirus.agent.program_path", "path", "/usr/bin/clamscan", "7.6.3",
        "Program Path: Command-line scanner executable."),
    opt("antivirus.agent.command_line_arguments", "str", "--no-summary --infected", "7.6.3",
        "Command line arguments: Arguments passed to the scanner (presets supply them)."),
    opt("antivirus.agent.args_delete_attachment", "bool", False, "7.6.3",
        "Command line arguments will delete attachment: Scanner removes infected attachments "
        "itself; incompatible with return code checking."),
    opt("antivirus.agent.return_code_check_enabled", "bool", True, "7.6.3",
        "Return code will be checked against this list: Decide infection from the scanner's "
        "exit code."),
    opt("antivirus.agent.return_codes", "list", ["1"], "7.6.3",
        "Return code will be checked against this list (codes): Exit codes meaning 'virus'; "
        "keyword 'any' means any non-zero. The word any means any non-zero code."),
    opt("antivirus.agent.return_code_check_mode", "enum", "listed_are_virus", "7.6.3",
        "Return code check: Treat listed codes as virus, or any code not in the list as "
        "virus.",
        choices=("listed_are_virus", "unlisted_are_virus")),
    opt("antivirus.agent.notification_message", "text", "", "11.1.1",
        "Antivirus Notification Message: Text inserted where removed infected content was "
        "(registry value of a custom agent)."),
    opt("antivirus.agent.scratch_directory", "path", "", "11.1.1",
        "Antivirus Scratch Directory: Per-agent unpack directory for scanning."),
    opt("antivirus.agent.program_name", "str", "ClamAV", "11.1.1",
        "Program Name: Display name of a custom scanner definition."),
    opt("antivirus.agent.program_info", "str", "", "11.1.1",
        "Program Info: Descriptive text of a custom scanner definition."),
]
