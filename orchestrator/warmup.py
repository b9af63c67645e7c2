"""What a web process loads before it serves: the graphs, the URLconf and the live pushes' templates.

The registry imports the graphs' modules on first use, Django the URLconf on the first ``reverse()``
and a template (with its tag libraries) on its first render. In a process serving WebSockets the
first push to an execution's watchers paid for all three: 0.7–0.9 s before 100 watchers saw the run
start, and the first steps queued behind it (docs/PERFORMANCE.md, live). ``orchestrator/asgi.py``
calls ``warm_up()`` at start instead. A graph that fails to load is recorded as broken, as on any
page; it does not stop the server.
"""

from __future__ import annotations

import logging

from django.template.loader import get_template
from django.urls import get_resolver

from orchestrator.registry import catalog

logger = logging.getLogger(__name__)

LIVE_TEMPLATES = (
    "traces/partials/step_push.html",
    "traces/partials/execution_push.html",
    "traces/partials/execution_row.html",
    "approvals/partials/live_count.html",
    "approvals/partials/live_rows.html",
    "approvals/partials/live_arrived.html",
    "approvals/partials/live_left.html",
    "approvals/partials/live_changed.html",
    "approvals/partials/decision.html",
)


def warm_up() -> None:
    for entry in catalog.all_entries():
        if entry.error is None:
            try:
                entry.compiled  # noqa: B018 - compiled once, with the checkpointer and the store
            except Exception:  # noqa: BLE001 - reported where the graph is used, as before
                logger.warning("graph %r could not be compiled at start", entry.name, exc_info=True)
    get_resolver().reverse_dict  # noqa: B018 - imports every app's URLs and builds the reverse lookup
    for name in LIVE_TEMPLATES:
        template = get_template(name)
        try:  # an empty render loads what the tags and filters load on first use (translations, time zones)
            template.render({})
        except Exception:  # noqa: BLE001, S110 - without its context a template may fail; it is loaded all the same
            pass
