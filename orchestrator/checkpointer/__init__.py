"""LangGraph checkpoints in Loopgate's own database: ``DjangoCheckpointSaver``.

The design mirrors LangGraph's checkpoint-postgres saver (the tables are in
``orchestrator/models/checkpoints.py``), for Postgres and SQLite alike:

- ``encoding``: plain JSON for the JSON columns, the serde's bytes under a marker where JSON is not exact;
- ``rows``: what a ``put``/``put_writes`` becomes and what a read turns back into, no database;
- ``postgres``: the hot path on Postgres, one SQL statement per write and per read (psycopg directly);
- ``portable``: the same on the Django ORM, for SQLite (embedded mode);
- ``retention``: delete, copy (forks) and prune threads;
- ``saver``: the ``BaseCheckpointSaver`` API itself, sync and async, and ``get_checkpointer()``.
"""

from __future__ import annotations

from orchestrator.checkpointer.rows import LEASE_KEY, Lease, LeaseRefused
from orchestrator.checkpointer.saver import DjangoCheckpointSaver, get_checkpointer

__all__ = ["LEASE_KEY", "DjangoCheckpointSaver", "Lease", "LeaseRefused", "get_checkpointer"]
