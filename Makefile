# Postroom: `make run` sets up and starts everything; `make test` runs the test suite.
# The virtual environment's interpreter: Debian's own /usr/bin/python3.11 when it is
# there, else python3 from PATH. Debian builds its interpreter with profile-guided and
# link-time optimisation; a self-compiled 3.11 (pyenv's default build) ran Postroom's
# SMTP session code about 16 % slower and the relay benchmark about 18 % slower on the
# same machine (bench/README.md). `make PYTHON=...` still chooses another.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) python3)
VENV ?= .venv
HOME_DIR ?= $(or $(POSTROOM_HOME),./postroom-data)
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: venv run test lint bench bench-smtp bench-deliver bench-stages bench-relay clean \
	bench-imap bench-imap-idle bench-imap-bigbox bench-smtp-session

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: venv
	$(BIN)/postroom --home $(HOME_DIR) init
	$(BIN)/postroom --home $(HOME_DIR) serve

test: venv
	$(BIN)/python -m pytest -n 2 -q

lint: venv
	$(BIN)/ruff check src tests bench

bench: venv
	$(BIN)/python bench/store_append.py

# SMTP accept rate against a private Postfix, and memory while a 50 MB message arrives
# (needs root; installs Debian's postfix package for smtp-source when missing).
bench-smtp: venv
	$(BIN)/python bench/smtp_accept.py

# SMTP to the mailbox end to end, against Postfix relaying the same load to smtp-sink
# (needs root, like bench-smtp).
bench-deliver: venv
	$(BIN)/python bench/smtp_to_mailbox.py

# The MTA and the post office connector alone: CPU per message per stage (no root).
bench-stages: venv
	$(BIN)/python bench/delivery_stages.py

# The SMTP session code alone, over an in-memory stream: CPU per message (no root).
bench-smtp-session: venv
	$(BIN)/python bench/smtp_session_cpu.py

# SMTP relay to a remote domain (MX = smtp-sink on 127.0.0.1:25, DKIM-signed), against
# Postfix relaying the same load to smtp-sink (needs root, like bench-smtp).
bench-relay: venv
	$(BIN)/python bench/smtp_relay.py

# POP3 retrieval rate against a private Dovecot (needs root; installs Debian's
# dovecot-pop3d when missing).
bench-pop3: venv
	$(BIN)/python bench/pop3_retrieve.py

# IMAP command mix against a private Dovecot (needs root; installs Debian's
# dovecot-imapd when missing).
bench-imap: venv
	$(BIN)/python bench/imap_load.py

# 10,000 IMAP connections in IDLE: server RSS and new-mail latency (raises the
# open-files limit; root raises the hard limit too).
bench-imap-idle: venv
	$(BIN)/python bench/imap_idle.py

# SELECT, UID FETCH 1:* (FLAGS) and header SEARCH in a folder of 100,000 messages.
bench-imap-bigbox: venv
	$(BIN)/python bench/imap_bigbox.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
