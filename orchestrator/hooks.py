"""Where the feature apps plug into the core.

The core (``orchestrator``) imports no feature app: when the runner must reach
them — a run's steps become a trace, an interrupt becomes approvals, a status
change is announced to every open page — it calls what they registered here
from their ``AppConfig.ready()``, the way LangGraph's callbacks and Django's own
signals decouple layers. import-linter keeps the rule (``.importlinter``).

Four kinds of hook:

- ``run_observers``: factories called when a worker starts advancing an
  execution; each returns a :class:`RunObserver` that sees every event of the
  run (the traces app records steps and spans).
- ``status_listeners``: called after commit, once per change of an execution's
  status, by the one owner of that status (``orchestrator.services``).
- ``human_gate``: the one app that turns interrupts into decisions people make
  (the approvals app). The runner cannot work without it.
- ``page_panels``: sections a feature app adds to a page the core (or a lower app)
  renders — the Graphs page's cards, the execution page — the way Django admin's
  ``get_urls`` lets an app add to a page it does not own. Each is a callable
  ``(request, **context) -> str`` returning HTML rendered from the app's own
  templates (autoescaped); the page shows them in order with ``{% page_panels %}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypedDict
from uuid import UUID

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from orchestrator.models import Execution

logger = logging.getLogger(__name__)


class PendingInterrupt(TypedDict):
    """One interrupt a graph is waiting on, as the runner hands it over."""

    id: str
    value: Any
    node: str
    checkpoint_id: str
    checkpoint_ns: str
    response_schema: Any


class RunObserver(Protocol):
    """Sees one worker's run of one execution."""

    callbacks: list[Any]
    """LangChain callback handlers to attach to the run (the trace's spans)."""

    def on_event(self, event: dict[str, Any]) -> bool:
        """One event of ``stream_mode="debug"``; True when it closed a step."""

    def on_stop(self, error: BaseException | None) -> None:
        """The run stopped (``error`` is what stopped it, if anything did)."""

    @property
    def failed_node(self) -> str | None:
        """The node whose failure ended the run, if one did."""


class HumanGate(Protocol):
    """Decisions people make about interrupts (the approvals app)."""

    def hand_over(self, *, execution_id: UUID, interrupts: list[PendingInterrupt]) -> list[bool]:
        """Make (or find) one approval per interrupt; returns, per interrupt, whether it is decided."""

    def hold(self, *, execution_id: UUID, checkpoint_id: str, nodes: list[str], when: str) -> bool:
        """Make (or find) the approval that holds a static breakpoint; returns whether it is decided."""

    def hold_status(self, *, execution_id: UUID, checkpoint_id: str) -> str | None:
        """``None`` when nothing holds the execution at this checkpoint, else ``"pending"``,
        ``"approved"`` or another decided status of the hold."""

    def resume_map(self, *, execution_id: UUID, interrupt_ids: list[str]) -> dict[str, Any] | None:
        """The resume value of every pending interrupt, or None while any is undecided."""

    def cancel_pending(self, *, execution_id: UUID) -> int:
        """The execution ended or was cancelled: its pending approvals no longer apply."""

    def nodes_seen(self, graph_name: str) -> Iterable[str]:
        """Nodes of the graph that stopped for a person in any execution."""

    def hold_fork(self, *, fork: Execution, parent: Execution, checkpoint_id: str, gate: str, reason: str,
                  values: Any, user: User | None) -> None:
        """A fork wrote past a gate: hold it there until a reviewer decides."""

    def settle_by_fork(self, *, parent_id: UUID, fork_id: UUID, gate: str, user: User,
                       detail: dict[str, Any]) -> int:
        """Someone who may decide let a fork go past ``gate``: settle the parent's approvals there;
        returns how many were settled (none: the fork itself is recorded as the decision)."""

    def expire_overdue(self) -> int:
        """Expire overdue approvals (the embedded mode's clock calls this; beat runs it otherwise)."""


PagePanel = Callable[..., str]
"""``panel(request, **context)``: the panel's HTML for this page, or ``""`` for none."""

PAGES = ("graph_card", "execution")
"""Where panels go: under each graph's card on the Graphs page (context: ``entry``, the
registry's ``GraphEntry``) and on an execution's page (context: ``execution``)."""


@dataclass
class _Hooks:
    run_observers: list[Callable[[Execution], RunObserver]]
    status_listeners: list[Callable[[UUID, str], None]]
    page_panels: dict[str, list[PagePanel]]
    human_gate: HumanGate | None = None


_hooks = _Hooks(run_observers=[], status_listeners=[], page_panels={page: [] for page in PAGES})


def register_run_observer(factory: Callable[[Execution], RunObserver]) -> None:
    if factory not in _hooks.run_observers:
        _hooks.run_observers.append(factory)


def register_status_listener(listener: Callable[[UUID, str], None]) -> None:
    if listener not in _hooks.status_listeners:
        _hooks.status_listeners.append(listener)


def register_page_panel(page: str, panel: PagePanel) -> None:
    if page not in PAGES:
        raise ImproperlyConfigured(f"No page {page!r} takes panels; pages: {', '.join(PAGES)}.")
    if panel not in _hooks.page_panels[page]:
        _hooks.page_panels[page].append(panel)


def page_panels(page: str) -> list[PagePanel]:
    return list(_hooks.page_panels.get(page, []))


def register_human_gate(gate: HumanGate) -> None:
    _hooks.human_gate = gate


def human_gate() -> HumanGate:
    if _hooks.human_gate is None:
        raise ImproperlyConfigured("No app registered a human gate: add 'approvals' to INSTALLED_APPS.")
    return _hooks.human_gate


def run_observers(execution: Execution) -> list[RunObserver]:
    return [factory(execution) for factory in _hooks.run_observers]


def status_changed(execution_id: UUID, status: str) -> None:
    """Tell every listener (after commit). A listener that fails never fails the change."""
    for listener in _hooks.status_listeners:
        try:
            listener(execution_id, status)
        except Exception:  # noqa: BLE001 - announcements are a courtesy; the database holds the truth
            logger.warning("status listener %r failed for %s", listener, execution_id, exc_info=True)
