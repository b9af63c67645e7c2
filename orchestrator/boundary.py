"""What a step's own write read of its execution's row, handed to the runner's step-boundary check.

At each step boundary the runner needs ``cancel_requested`` and ``lease_owner``
(orchestrator/runner.py ``_at_step_boundary``). The traces app writes the step's
row in one statement that also counts the step on the execution's row and
returns those two columns at that moment; it leaves them here, in the runner's
own thread, and the boundary check takes them instead of reading the row again
(one round trip less per step). Whatever is not left here is read as before.
"""

from __future__ import annotations

import threading
from typing import Any

_seen = threading.local()


def saw(execution_id: Any, *, cancel_requested: bool, lease_owner: str) -> None:
    """The execution's row as a write of this thread just read it (inside the step's statement)."""
    _seen.row = (str(execution_id), {"cancel_requested": cancel_requested, "lease_owner": lease_owner})


def take(execution_id: Any) -> dict[str, Any] | None:
    """What this thread's last write saw of the execution, once; None if nothing since the last take."""
    row, _seen.row = getattr(_seen, "row", None), None
    if row is None or row[0] != str(execution_id):
        return None
    return row[1]
