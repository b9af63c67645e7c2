"""Events the core announces for whoever counts them (the ops app's metrics).

Django signals, so the core imports no feature app: receivers connect in their
``AppConfig.ready()``. Sent by the runner, in the worker where they happen.
"""

from __future__ import annotations

from django.dispatch import Signal

# A run found its lease taken (its heartbeat failed, or another worker claimed it): kwargs execution_id, worker.
lease_lost = Signal()
# A shutting-down worker handed a running execution back to the queue: kwargs execution_id, worker.
handed_back = Signal()
