"""LangGraph's checkpointer conformance suite, on Postgres and SQLite, through both method paths.

The suite calls only the async methods and runs a capability only when its
method is overridden (a saver with only sync methods runs nothing and still
reports "FULL"). So every capability must be detected and pass, and the suite
runs a second time through ``SyncPathSaver``, whose async methods call the
public sync ones, so both paths are tested on both databases.

``TransactionTestCase``: the async methods reach the database from other
threads, so the data must really be committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.test import TransactionTestCase
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES, EXTENDED_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport

from orchestrator.checkpointer import DjangoCheckpointSaver


class SyncPathSaver(DjangoCheckpointSaver):
    """The saver seen through its sync methods: each async method calls its sync twin."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await sync_to_async(self.get_tuple)(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        def read() -> list[CheckpointTuple]:
            return [*self.list(config, filter=filter, before=before, limit=limit)]

        for item in await sync_to_async(read)():
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await sync_to_async(self.put)(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await sync_to_async(self.put_writes)(config, writes, task_id, task_path)

    # adelete_thread, acopy_thread, adelete_for_runs and aprune already call the
    # sync methods in the saver itself: inherited as they are.


def run_conformance(saver_class: type[DjangoCheckpointSaver], alias: str) -> CapabilityReport:
    @checkpointer_test(name=f"{saver_class.__name__}[{alias}]")
    async def factory() -> AsyncIterator[DjangoCheckpointSaver]:
        yield saver_class(using=alias)

    return async_to_sync(validate)(factory)


class CheckpointerConformanceTests(TransactionTestCase):
    databases = {"default", "sqlite"}

    def assert_fully_conformant(self, report: CapabilityReport) -> None:
        failures = {name: result.failures for name, result in report.results.items() if result.failures}
        self.assertTrue(report.passed_all_base(), failures)
        self.assertTrue(EXTENDED_CAPABILITIES <= ALL_CAPABILITIES)
        for capability in sorted(ALL_CAPABILITIES, key=lambda c: c.value):
            result = report.results[capability.value]
            # A skipped capability (not detected, or passed=None) fails the test.
            self.assertTrue(result.detected, f"{capability.value} was not detected")
            self.assertIs(result.passed, True, f"{capability.value}: {result.failures}")
            self.assertGreater(result.tests_passed, 0, f"{capability.value} ran no tests")
            self.assertEqual(result.tests_failed, 0, f"{capability.value}: {result.failures}")
            self.assertEqual(result.tests_skipped, 0, f"{capability.value} skipped tests")
        self.assertEqual(report.conformance_level(), "FULL")

    def test_the_databases_are_postgres_and_sqlite(self) -> None:
        self.assertEqual(connections["default"].vendor, "postgresql")
        self.assertEqual(connections["sqlite"].vendor, "sqlite")

    def test_async_methods_pass_every_capability_on_postgres(self) -> None:
        self.assert_fully_conformant(run_conformance(DjangoCheckpointSaver, "default"))

    def test_async_methods_pass_every_capability_on_sqlite(self) -> None:
        self.assert_fully_conformant(run_conformance(DjangoCheckpointSaver, "sqlite"))

    def test_sync_methods_pass_every_capability_on_postgres(self) -> None:
        self.assert_fully_conformant(run_conformance(SyncPathSaver, "default"))

    def test_sync_methods_pass_every_capability_on_sqlite(self) -> None:
        self.assert_fully_conformant(run_conformance(SyncPathSaver, "sqlite"))
