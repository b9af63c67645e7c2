"""Counting what a piece of code asks of Postgres: statements, transactions, new connections.

Used by the bench scripts in a separate, untimed pass (counting costs time).

- statements: every ``execute`` of a psycopg cursor (Django's, LangGraph's and
  our own all go through psycopg 3), ``executemany`` counted once per row as
  Postgres runs it;
- transactions: ``pg_stat_database.xact_commit`` of the bench's own database,
  read after every connection that took part has closed (a backend flushes its
  counters when it exits), so read-only autocommit statements count too;
- connections: Django's ``connection_created`` signal, on any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass
class Counts:
    statements: int = 0
    transactions: int = 0
    connections: int = 0

    def per(self, n: float) -> str:
        return (
            f"{self.statements / n:6.2f} statements, {self.transactions / n:6.2f} transactions, "
            f"{self.connections / n:5.2f} new connections"
        )


class _Reader:
    """Reads the database's commit counter from one transaction that never commits, so reading adds nothing."""

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.conn = psycopg.connect(conninfo, autocommit=False)

    def read(self) -> int:
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        row = self.conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def settled(self) -> int:
        """The counter once exited backends' counters have arrived (shortly after they exit)."""
        last, stable_since = self.read(), time.monotonic()
        while time.monotonic() - stable_since < 0.6:
            time.sleep(0.1)
            now = self.read()
            if now != last:
                last, stable_since = now, time.monotonic()
        return last

    def close(self) -> None:
        self.conn.rollback()
        self.conn.close()


@contextmanager
def counting(conninfo: str, close: Any = None) -> Iterator[Counts]:
    """Counts what the block does. ``close()`` must close the connections it used before the count is read."""
    import psycopg
    from django.db import connections
    from django.db.backends.signals import connection_created

    counts = Counts()
    lock = threading.Lock()
    originals = {
        (cls, name): getattr(cls, name)
        for cls in (psycopg.Cursor, psycopg.AsyncCursor)
        for name in ("execute", "executemany")
    }

    def wrap(cls: type, name: str) -> Any:
        original = originals[(cls, name)]
        many = name == "executemany"
        if cls is psycopg.AsyncCursor:

            async def async_counted(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
                with lock:
                    counts.statements += len(params) if many and params is not None else 1
                return await original(self, query, params, *args, **kwargs)

            return async_counted

        def counted(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            with lock:
                counts.statements += len(params) if many and params is not None else 1
            return original(self, query, params, *args, **kwargs)

        return counted

    def on_connect(sender: Any, connection: Any, **kwargs: Any) -> None:
        with lock:
            counts.connections += 1

    for connection in connections.all():
        connection.close()
    reader = _Reader(conninfo)
    before = reader.settled()
    for (cls, name) in originals:
        setattr(cls, name, wrap(cls, name))
    connection_created.connect(on_connect, weak=False)
    try:
        yield counts
    finally:
        for (cls, name), original in originals.items():
            setattr(cls, name, original)
        connection_created.disconnect(on_connect)
        if close is not None:
            close()
        for connection in connections.all():
            connection.close()
        counts.transactions = reader.settled() - before
        reader.close()
