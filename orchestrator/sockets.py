"""WebSockets follow their user's session and rights: closed at logout, re-checked when roles change.

A socket keeps the user it was opened with, and Loopgate caches a user's roles
on that object, so without this a socket opened before logout (or before a role
was taken away) would go on receiving live rows. Every consumer mixes in
``GuardedSocket``:

- it joins ``session.<key>`` and ``user.<id>``; at logout the session's sockets
  are told ``auth.revoked`` and close (code 4401); when a user's groups or
  active flag change, their sockets are told ``auth.recheck`` and close (4403)
  if the consumer's own check (``allowed()``) now fails;
- before a push, at most every ``RECHECK_SECONDS``, it re-reads the user and
  the session from the database, so a missed message (a restarted Redis, a
  session expired or deleted by an admin) closes it all the same. The sockets of
  a process that are due at the same moment (a push to 100 watchers of one
  execution) are re-checked together, in one thread hop: each session and user
  read once, each consumer's check once per ``allowed_key()``. One by one they
  put a push to 100 watchers a quarter of a second behind (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction

from orchestrator import announce

logger = logging.getLogger(__name__)

RECHECK_SECONDS = 5.0
CLOSE_LOGGED_OUT = 4401
CLOSE_FORBIDDEN = 4403


def user_group(user_id: Any) -> str:
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    return f"session.{session_key}"


class GuardedSocket:
    """Mixed into an ``AsyncWebsocketConsumer`` before it; the consumer defines ``allowed()`` (sync,
    with database access) and calls ``guard_join()`` after accepting and ``still_allowed()`` before a push."""

    guard_groups: list[str]
    guard_checked_at: float = 0.0
    guard_closed: bool = False

    def allowed(self) -> bool:  # pragma: no cover - every consumer overrides it
        raise NotImplementedError

    def allowed_key(self) -> Any:
        """What ``allowed()`` depends on besides the user (sockets re-checked together with equal keys and
        the same user share one check), or None to check each socket on its own."""
        return None

    async def guard_join(self) -> None:
        self.guard_groups = []
        user = self.scope.get("user")  # type: ignore[attr-defined]
        session = self.scope.get("session")  # type: ignore[attr-defined]
        if user is not None and user.is_authenticated:
            self.guard_groups.append(user_group(user.pk))
        if session is not None and session.session_key:
            self.guard_groups.append(session_group(session.session_key))
        for group in self.guard_groups:
            await self.channel_layer.group_add(group, self.channel_name)  # type: ignore[attr-defined]
        self.guard_checked_at = time.monotonic()

    async def guard_leave(self) -> None:
        for group in getattr(self, "guard_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)  # type: ignore[attr-defined]

    async def still_allowed(self) -> bool:
        """Re-check the session and the user's rights if the last check is older than ``RECHECK_SECONDS``;
        close the socket and return False when they are gone."""
        if self.guard_closed:
            return False
        if time.monotonic() - self.guard_checked_at < RECHECK_SECONDS:
            return True
        return await self._recheck()

    async def _recheck(self) -> bool:
        self.guard_checked_at = time.monotonic()
        code = await _Rechecks.check(self)
        if code:
            await self._guard_close(code)
            return False
        return True

    async def _guard_close(self, code: int) -> None:
        self.guard_closed = True
        await self.close(code=code)  # type: ignore[attr-defined]

    # -- channel-layer events ------------------------------------------------------------------------------

    async def auth_revoked(self, event: dict[str, Any]) -> None:
        await self._guard_close(CLOSE_LOGGED_OUT)

    async def auth_recheck(self, event: dict[str, Any]) -> None:
        await self._recheck()


class _Rechecks:
    """The sockets of one event loop that ask for a re-check before the loop next gets to run this
    batch (every watcher of a pushed step asks in the same turn) are checked in one thread hop."""

    _pending: dict[int, _Rechecks] = {}

    def __init__(self) -> None:
        self.sockets: list[GuardedSocket] = []
        self.done: asyncio.Future[dict[int, int]] = asyncio.get_running_loop().create_future()

    @classmethod
    async def check(cls, socket: GuardedSocket) -> int:
        loop = asyncio.get_running_loop()
        batch = cls._pending.get(id(loop))
        if batch is None or batch.done.get_loop() is not loop:  # (an id reused by a later loop)
            batch = cls._pending[id(loop)] = cls()
            # Runs after the handlers already scheduled in this turn have joined the batch.
            loop.call_soon(lambda: asyncio.ensure_future(batch._run(id(loop))))
        batch.sockets.append(socket)
        codes = await asyncio.shield(batch.done)
        return codes[id(socket)]

    async def _run(self, loop_id: int) -> None:
        if self._pending.get(loop_id) is self:
            del self._pending[loop_id]
        try:
            codes = await database_sync_to_async(check_sockets)(self.sockets)
        except BaseException as exc:
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: each socket's handler raises it in turn
            return
        self.done.set_result(codes)


def check_sockets(sockets: list[GuardedSocket]) -> dict[int, int]:
    """For each socket (by ``id``): 0 if it may stay open, else the close code. Re-reads each session
    and user once, without cached roles, and hands each socket its user's fresh object."""
    sessions: dict[str, bool] = {}
    user_ids = set()
    for socket in sockets:
        session = socket.scope.get("session")  # type: ignore[attr-defined]
        if session is not None and session.session_key and session.session_key not in sessions:
            sessions[session.session_key] = session.exists(session.session_key)
        user = socket.scope.get("user")  # type: ignore[attr-defined]
        if user is not None and user.is_authenticated:
            user_ids.add(user.pk)
    fresh = {u.pk: u for u in get_user_model().objects.filter(pk__in=user_ids, is_active=True)} if user_ids else {}
    codes: dict[int, int] = {}
    verdicts: dict[tuple[Any, ...], bool] = {}
    for socket in sockets:
        session = socket.scope.get("session")  # type: ignore[attr-defined]
        user = socket.scope.get("user")  # type: ignore[attr-defined]
        if session is not None and session.session_key and not sessions[session.session_key]:
            codes[id(socket)] = CLOSE_LOGGED_OUT
            continue
        if user is None or not user.is_authenticated or user.pk not in fresh:
            codes[id(socket)] = CLOSE_LOGGED_OUT
            continue
        socket.scope["user"] = fresh[user.pk]  # type: ignore[attr-defined]
        if hasattr(socket, "user"):
            socket.user = fresh[user.pk]  # type: ignore[attr-defined]
        key = socket.allowed_key()
        shared = (type(socket), user.pk, key) if key is not None else None
        try:
            if shared is None:
                allowed = socket.allowed()
            else:
                if shared not in verdicts:
                    verdicts[shared] = socket.allowed()
                allowed = verdicts[shared]
        except Exception:  # noqa: BLE001 - one consumer's failing check closes its socket, not the batch's others
            logger.warning("re-checking a socket failed; it is closed (the page reconnects)", exc_info=True)
            allowed = False
        codes[id(socket)] = 0 if allowed else CLOSE_FORBIDDEN
    return codes


# --- announcing (sync code, through the signals below) ----------------------------------------------------


def _send(group: str, message: dict[str, Any]) -> None:
    # A lost message is logged (orchestrator/announce.py): the sockets' own periodic re-check still closes them.
    announce.group_send(group, message)


def on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out``: the session's sockets close (the session is flushed right after this)."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        _send(session_group(session_key), {"type": "auth.revoked"})


def on_user_changed(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    """``post_save`` of a user and ``m2m_changed`` of their groups: their sockets re-check, after commit."""
    action = kwargs.get("action")
    if action is not None and not action.startswith("post_"):
        return
    user_ids = [instance.pk] if isinstance(instance, get_user_model()) else list(kwargs.get("pk_set") or [])
    for user_id in user_ids:
        transaction.on_commit(partial(_send, user_group(user_id), {"type": "auth.recheck"}))


def connect_signals() -> None:
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import m2m_changed, post_save

    user_model = get_user_model()
    user_logged_out.connect(on_logged_out, dispatch_uid="loopgate.sockets.logged_out")
    post_save.connect(on_user_changed, sender=user_model, dispatch_uid="loopgate.sockets.user_saved")
    m2m_changed.connect(on_user_changed, sender=user_model.groups.through, dispatch_uid="loopgate.sockets.groups")
