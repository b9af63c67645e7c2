"""Log filters for Django's own loggers."""

from __future__ import annotations

import logging


class ForbiddenOnOneLine(logging.Filter):
    """A refused page (403) is an everyday event, not a failure: log it as one line, without the
    traceback of the ``PermissionDenied`` that Django attaches to ``django.request``'s record, and
    with its reason instead ("Forbidden (Only admins may open this page.): /budgets/")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            reason = str(record.exc_info[1]) if record.exc_info and record.exc_info[1] is not None else ""
            if reason and record.msg == "Forbidden (Permission denied): %s":
                record.msg, record.args = "Forbidden (%s): %s", (reason, *(record.args or ()))
            record.exc_info = None
            record.exc_text = None
        return True
