"""Outbound SMTP: delivery of SMTP.outgoing to MX and smart hosts (manual 6.2.3.8-6.2.3.9)."""
