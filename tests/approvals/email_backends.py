"""Email backends that fail as SMTP servers do, for the notification tests (``EMAIL_BACKEND``)."""

from __future__ import annotations

import smtplib
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FailingEmailBackend(BaseEmailBackend):
    """Every send fails: the SMTP server is down. ``attempts`` counts the tries."""

    attempts = 0

    def send_messages(self, email_messages: Any) -> int:
        type(self).attempts += 1
        raise ConnectionRefusedError(111, "Connection refused")


class FlakyEmailBackend(LocmemBackend):
    """The next ``failures`` sends fail as a dropped connection does; then mail reaches ``mail.outbox``."""

    failures = 0

    def send_messages(self, email_messages: Any) -> int:
        if FlakyEmailBackend.failures > 0:
            FlakyEmailBackend.failures -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(email_messages)


class RefusingEmailBackend(BaseEmailBackend):
    """The server refuses every recipient (550): retrying would not help. ``attempts`` counts the tries."""

    attempts = 0

    def send_messages(self, email_messages: Any) -> int:
        type(self).attempts += 1
        raise smtplib.SMTPRecipientsRefused({"rita@example.com": (550, b"5.1.1 No such user")})
