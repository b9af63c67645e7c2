"""Lease fencing in the checkpointer: with ``configurable["loopgate_lease"]``, a write lands only while
the execution's lease is the writer's; a worker that lost its lease writes nothing.

``TransactionTestCase``: LangGraph writes checkpoints from its own threads, so the data must really
be committed.
"""

from __future__ import annotations

from typing import Any

from django.test import TransactionTestCase
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
from langgraph.checkpoint.serde.types import ERROR

from orchestrator.checkpointer import DjangoCheckpointSaver
from tests.orchestrator.test_checkpointer import ALIASES, START_STATE, metadata, row_counts, thread_config, ticker


class CheckpointerLeaseFencingTests(TransactionTestCase):
    """With ``configurable["loopgate_lease"]``, a write lands only while the execution's lease is the writer's."""

    databases = {"default", "sqlite"}

    def execution(self, alias: str, owner: str) -> Any:
        from orchestrator.models import Execution
        from orchestrator.models.execution import owning_status

        with owning_status():  # a fixture: a running execution without a worker
            return Execution.objects.using(alias).create(
                graph_name="t_counter", graph_version="v", status=Execution.Status.RUNNING, input={}, lease_owner=owner
            )

    def test_a_stale_writer_is_refused_and_changes_nothing(self) -> None:
        from orchestrator.checkpointer import LEASE_KEY, LeaseRefused
        from orchestrator.errors import LeaseLost
        from orchestrator.models import Execution

        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                execution = self.execution(alias, owner="worker-a:1")
                config = generate_config(str(execution.id))
                config["configurable"][LEASE_KEY] = {"execution_id": str(execution.id), "token": "worker-a:1"}
                first = generate_checkpoint(channel_values={"doc": {"a": 1}}, channel_versions={"doc": 1})
                stored = saver.put(config, first, generate_metadata(), {"doc": 1})
                stored["configurable"][LEASE_KEY] = config["configurable"][LEASE_KEY]
                saver.put_writes(stored, [("doc", {"a": 2})], "task-1")
                before = row_counts(alias, config)
                self.assertEqual(before, [1, 1, 1])

                # Another worker takes the lease over: the first one's writes are refused.
                Execution.objects.using(alias).filter(id=execution.id).update(lease_owner="worker-b:2")
                second = generate_checkpoint(channel_values={"doc": {"a": 3}}, channel_versions={"doc": 2})
                with self.assertRaises(LeaseRefused) as refused:
                    saver.put(stored, second, generate_metadata(), {"doc": 2})
                self.assertIsInstance(refused.exception, LeaseLost)  # the runner stops as on a lost heartbeat
                with self.assertRaises(LeaseRefused):
                    saver.put_writes(stored, [("doc", {"a": 4})], "task-2")
                with self.assertRaises(LeaseRefused):
                    saver.put_writes(stored, [(ERROR, ValueError("late"))], "task-1")
                self.assertEqual(row_counts(alias, config), before)
                latest = saver.get_tuple({"configurable": {"thread_id": str(execution.id)}})
                assert latest is not None
                self.assertEqual(latest.checkpoint["id"], first["id"])
                self.assertEqual([(w[0], w[2]) for w in latest.pending_writes], [("task-1", {"a": 2})])

                # The new owner's token writes; and a finished run (no owner) refuses everyone.
                config["configurable"][LEASE_KEY] = {"execution_id": str(execution.id), "token": "worker-b:2"}
                saver.put(config, second, generate_metadata(), {"doc": 2})
                Execution.objects.using(alias).filter(id=execution.id).update(lease_owner="")
                with self.assertRaises(LeaseRefused):
                    saver.put(config, generate_checkpoint(), generate_metadata(), {})

    def test_the_lease_rides_along_a_real_run_and_plain_runs_need_none(self) -> None:
        from orchestrator.checkpointer import LEASE_KEY, LeaseRefused
        from orchestrator.models import Execution

        saver = DjangoCheckpointSaver()
        execution = self.execution("default", owner="worker-a:1")
        lease = {"execution_id": str(execution.id), "token": "worker-a:1"}
        config = thread_config(str(execution.id))
        config["configurable"][LEASE_KEY] = lease
        ticker(saver, until=3).invoke(START_STATE, config)
        self.assertEqual(row_counts("default", config)[0], 5)
        # The lease is not copied into the checkpoints' metadata.
        self.assertNotIn(LEASE_KEY, metadata(saver.get_tuple(thread_config(str(execution.id)))))  # type: ignore[arg-type]

        Execution.objects.filter(id=execution.id).update(lease_owner="worker-b:2")
        other = thread_config(str(execution.id))
        other["configurable"][LEASE_KEY] = lease
        with self.assertRaises(LeaseRefused):
            ticker(saver, until=6).invoke(START_STATE, other)
        self.assertEqual(row_counts("default", config)[0], 5)
        # Without a lease in the config the saver is plain LangGraph.
        ticker(saver, until=6).invoke(START_STATE, thread_config(str(execution.id)))
        self.assertGreater(row_counts("default", config)[0], 5)


class LeaseLockTests(TransactionTestCase):
    """On Postgres the lease check locks the row only against a change of owner: while a checkpoint write is
    under way a takeover's claim waits for it, the run's own step count and heartbeat do not."""

    def test_a_write_in_flight_holds_off_a_claim_and_nothing_else(self) -> None:
        import psycopg
        from django.db import connection, transaction
        from django.utils import timezone

        from orchestrator.checkpointer import LEASE_KEY
        from orchestrator.models import Execution

        execution = CheckpointerLeaseFencingTests.execution(self, "default", owner="worker-a:1")
        config = generate_config(str(execution.id))
        config["configurable"][LEASE_KEY] = {"execution_id": str(execution.id), "token": "worker-a:1"}
        settings = connection.settings_dict
        other = psycopg.connect(host=settings["HOST"] or "127.0.0.1", port=settings["PORT"] or 5432,
                                user=settings["USER"], dbname=settings["NAME"], autocommit=True)
        try:
            other.execute("SET lock_timeout = '300ms'")
            with transaction.atomic():  # the write's transaction stays open, as while it commits
                DjangoCheckpointSaver().put(config, generate_checkpoint(), generate_metadata(), {})
                other.execute("UPDATE orchestrator_execution SET step_count = step_count + 1 WHERE id = %s",
                              [execution.id])
                other.execute("UPDATE orchestrator_execution SET lease_expires_at = %s WHERE id = %s",
                              [timezone.now(), execution.id])
                with self.assertRaises(psycopg.errors.LockNotAvailable):
                    other.execute("UPDATE orchestrator_execution SET lease_owner = 'worker-b:2' WHERE id = %s",
                                  [execution.id])
        finally:
            other.close()
        execution = Execution.objects.get(id=execution.id)
        self.assertEqual((execution.step_count, execution.lease_owner), (1, "worker-a:1"))
