"""Announcements of the approvals app on the channel layer. Sync code (the runner,
services) announces only through here.

The message carries no HTML and no ids: each connected inbox re-reads the
pending approvals through a selector, works out what arrived and what left since
it last looked, and renders that itself (approvals/consumers.py).
"""

from __future__ import annotations

from orchestrator import announce

INBOX_GROUP = "approvals.inbox"


def announce_approvals_changed() -> None:
    """Approvals were created, decided, claimed or expired: every open page updates.

    Called after commit. A lost announcement costs a live update, never data:
    pages re-read the database, so failures are logged, not raised.
    """
    announce.group_send(INBOX_GROUP, {"type": "approvals.changed"})
