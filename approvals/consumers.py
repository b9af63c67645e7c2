"""Live approvals over a WebSocket (``/ws/approvals/``, group ``approvals.inbox``).

Every page's top bar connects to keep the pending count fresh and to announce
new approvals to screen readers; the inbox connects with ``?rows=1`` and also
gets new rows (slid in at the top) and rows that left (with who decided).

On each ``approvals.changed`` message the consumer re-reads the pending
approvals through the selectors, as the connected user, compares them with what
it last sent and renders only the difference (the htmx ws extension swaps it in
by id). Nothing in the message itself reaches the page.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict
from django.template.loader import render_to_string

from approvals import selectors
from approvals.live import INBOX_GROUP
from approvals.models import Approval
from orchestrator import roles
from orchestrator.params import BadParameter, param_float, param_text, param_uuid
from orchestrator.sockets import GuardedSocket


class ApprovalsConsumer(GuardedSocket, AsyncWebsocketConsumer):
    joined = False

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not await database_sync_to_async(self._allowed)():
            await self.close(code=4403)
            return
        query = QueryDict(self.scope.get("query_string", b""))
        try:
            self.rows = param_text(query, "rows") == "1"
            self.graph = param_text(query, "graph", max_length=200)
            self.age = param_text(query, "age")
            self.mine = param_text(query, "mine") == "1"
            # When the page was rendered: approvals created after it, before this
            # socket opened, are announced too (they are news to the reader).
            self.since: float | None = param_float(query, "since")
            # An approval's own page: when someone else decides it, the page shows so at once.
            self.watched = param_uuid(query, "approval")
        except BadParameter:
            await self.close(code=4400)
            return
        self.known: dict[str, int | None] | None = None
        self.watched_pending: bool | None = None
        self.last_count: int | None = None
        await self.channel_layer.group_add(INBOX_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        await self.guard_join()  # closed at logout, re-checked when the user's roles change
        # The page was rendered a moment ago; anything that changed since is sent now.
        await self.send_update(announce=False)

    async def disconnect(self, code: int) -> None:
        if self.joined:
            await self.channel_layer.group_discard(INBOX_GROUP, self.channel_name)
        await self.guard_leave()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The page sends nothing that matters; it only listens."""

    async def approvals_changed(self, event: dict[str, Any]) -> None:
        if await self.still_allowed():
            await self.send_update(announce=True)

    async def send_update(self, *, announce: bool) -> None:
        # One message per kind of fragment: table rows must not share a message
        # with other elements (an HTML parser drops rows outside a table).
        for html in await database_sync_to_async(self._render)(announce):
            if html.strip():
                await self.send(text_data=html)

    # -- sync, in a thread with database access ------------------------------------------------------

    def _allowed(self) -> bool:
        return selectors.approvals_visible_to(user=self.user)

    def allowed(self) -> bool:
        return self._allowed()

    def allowed_key(self) -> Any:
        return "approvals"

    def _render(self, announce: bool) -> list[str]:
        user = self.user
        pending = list(selectors.approval_list_pending(user=user))
        count = len(pending)
        shown = pending
        filtered = bool(self.graph or self.age or self.mine)
        if filtered:
            shown = list(selectors.approval_list_pending(user=user, graph=self.graph, age=self.age, mine=self.mine))
        current = {str(a.id): a.claimed_by_id for a in shown}
        first_look = self.known is None
        if first_look:
            # (Re)connected: the rows are sent whole below, so whatever happened
            # between the page's render and now (or while the socket was down) shows.
            self.known = current
            arrived: list[Approval] = []
            left: list[Approval] = []
            changed: list[Approval] = []
            since, self.since = self.since, None  # only the first look: a reconnect announces nothing old
            news = [a for a in shown if since is not None and a.created_at.timestamp() > since]
        else:
            assert self.known is not None
            arrived = [a for a in shown if str(a.id) not in self.known]
            changed = [a for a in shown if str(a.id) in self.known and self.known[str(a.id)] != a.claimed_by_id]
            left_ids = set(self.known) - set(current)
            left = list(selectors.approval_list_for_user(user=user).filter(id__in=left_ids)) if left_ids else []
            self.known = current
            news = arrived
        # Only what changed is sent: news of another page (or of another Loopgate
        # on the same Redis) sends nothing.
        count_changed, self.last_count = count != self.last_count, count
        ctx = {
            "count": count,
            "shown": shown,
            "filtered": filtered,
            "visible": True,
            "arrived": arrived,
            "left": left,
            "changed": changed,
            "announce": announce and bool(arrived),
            "user": user,
            "can_decide": roles.can_decide(user),
        }
        out = []
        announcing = (announce or first_look) and bool(news)
        if count_changed or announcing:
            out.append(render_to_string("approvals/partials/live_count.html",
                                        {**ctx, "arrived": news, "announce": announcing}))
        if self.rows and first_look:
            out.append(render_to_string("approvals/partials/live_rows.html", ctx))
        if self.rows and arrived:
            out.append(render_to_string("approvals/partials/live_arrived.html", ctx))
        if self.rows and left:
            out.append(render_to_string("approvals/partials/live_left.html", ctx))
        if self.rows and changed:  # claimed or released elsewhere: others see who is on it
            out.append(render_to_string("approvals/partials/live_changed.html", ctx))
        out.extend(self._watched_decision())
        return [html.strip() for html in out]

    def _watched_decision(self) -> list[str]:
        """The watched approval's decision, once, when it stops being pending while its page is open."""
        if self.watched is None:
            return []
        approval = selectors.approval_list_for_user(user=self.user).filter(id=self.watched).select_related(
            "decided_by", "execution").first()
        if approval is None:
            return []
        was_pending, self.watched_pending = self.watched_pending, approval.is_pending
        if was_pending is not True or approval.is_pending:
            return []  # first look (the page shows it as rendered), or nothing changed
        decided_by = selectors.user_for_display(approval.decided_by, self.user) if approval.decided_by else ""
        raced = approval.decided_by_id is not None and approval.decided_by_id != getattr(self.user, "id", None)
        return [render_to_string("approvals/partials/decision.html", {
            "approval": approval, "pushed": True, "raced": raced, "decided_by": decided_by,
            "execution": approval.execution, "user": self.user,
            "next_approval": selectors.approval_next_pending(user=self.user, after=approval),
        })]
