"""DjangoCheckpointSaver under real LangGraph graphs, and what the conformance suite does not look at.

``TransactionTestCase``: LangGraph writes checkpoints from its own threads, so
the data must really be committed.
"""

from __future__ import annotations

import datetime
import itertools
import operator
import time
import uuid
from typing import Annotated, Any, TypedDict
from unittest import mock

from asgiref.sync import async_to_sync
from django.db import connections
from django.test import TransactionTestCase
from django.test.utils import CaptureQueriesContext
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StateSnapshot

from orchestrator.checkpointer import saver as saver_module
from orchestrator.checkpointer import DjangoCheckpointSaver, get_checkpointer
from orchestrator.models import Checkpoint, CheckpointBlob, CheckpointWrite

ALIASES = ("default", "sqlite")


class PipelineState(TypedDict):
    log: Annotated[list[str], operator.add]
    doc: dict[str, str]
    count: int


def node(name: str) -> Any:
    def run(state: PipelineState) -> dict[str, Any]:
        return {"log": [name], "count": state["count"] + 1}

    return run


def pipeline(saver: DjangoCheckpointSaver) -> CompiledStateGraph:
    """extract -> review -> publish, each appending its name to ``log`` (a reducer channel)."""
    builder = StateGraph(PipelineState)
    for name in ("extract", "review", "publish"):
        builder.add_node(name, node(name))
    builder.add_edge(START, "extract")
    builder.add_edge("extract", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=saver)


def ticker(saver: DjangoCheckpointSaver, *, until: int) -> CompiledStateGraph:
    """One node looping ``until`` times; only ``log`` and ``count`` change, ``doc`` never does."""
    builder = StateGraph(PipelineState)
    builder.add_node("tick", lambda state: {"log": [f"tick{state['count']}"], "count": state["count"] + 1})
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda state: "tick" if state["count"] < until else END)
    return builder.compile(checkpointer=saver)


def extend(state: list[int], batches: list[list[int]]) -> list[int]:
    return [*state, *(item for batch in batches for item in batch)]


class EventState(TypedDict):
    events: Annotated[list[int], DeltaChannel(extend, snapshot_frequency=3)]
    count: int


def delta_ticker(saver: DjangoCheckpointSaver, *, until: int) -> CompiledStateGraph:
    """Like ``ticker``, on a DeltaChannel: a snapshot every 3 updates, writes replayed in between."""
    builder = StateGraph(EventState)
    builder.add_node("tick", lambda state: {"events": [state["count"]], "count": state["count"] + 1})
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda state: "tick" if state["count"] < until else END)
    return builder.compile(checkpointer=saver)


def metadata(snapshot: StateSnapshot | CheckpointTuple) -> dict[str, Any]:
    assert snapshot.metadata is not None
    return dict(snapshot.metadata)


def listed_steps(saver: DjangoCheckpointSaver, thread_id: str, **kwargs: Any) -> list[int]:
    """The metadata steps ``saver.list`` yields for a thread, in order."""
    return [metadata(t)["step"] for t in saver.list(generate_config(thread_id), **kwargs)]


def row_counts(alias: str, config: RunnableConfig) -> list[int]:
    """A thread's checkpoints, blobs and writes."""
    thread_id = config["configurable"]["thread_id"]
    return [
        model.objects.using(alias).filter(thread_id=thread_id).count()
        for model in (Checkpoint, CheckpointBlob, CheckpointWrite)
    ]


def thread_config(thread_id: str | None = None, **extra: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id or str(uuid.uuid4()), **extra}}


START_STATE: PipelineState = {"log": [], "doc": {"title": "quarterly report", "body": "x" * 2000}, "count": 0}


class CheckpointerGraphTests(TransactionTestCase):
    databases = {"default", "sqlite"}

    def test_a_run_leaves_its_whole_history_newest_first(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                graph = pipeline(DjangoCheckpointSaver(using=alias))
                config = thread_config()

                final = graph.invoke(START_STATE, config)

                self.assertEqual(final["log"], ["extract", "review", "publish"])
                history = list(graph.get_state_history(config))
                self.assertEqual([metadata(s)["step"] for s in history], [3, 2, 1, 0, -1])
                self.assertEqual(
                    [s.next for s in history], [(), ("publish",), ("review",), ("extract",), ("__start__",)]
                )
                self.assertEqual(
                    [s.values.get("log") for s in history[:4]],
                    [
                        ["extract", "review", "publish"],
                        ["extract", "review"],
                        ["extract"],
                        [],
                    ],
                )
                self.assertEqual(history[0].values["doc"], START_STATE["doc"])
                # Each checkpoint's parent is the next older one.
                for newer, older in itertools.pairwise(history):
                    assert newer.parent_config is not None
                    self.assertEqual(
                        newer.parent_config["configurable"]["checkpoint_id"],
                        older.config["configurable"]["checkpoint_id"],
                    )

    def test_resuming_from_a_middle_checkpoint_replays_the_rest(self) -> None:
        graph = pipeline(DjangoCheckpointSaver())
        config = thread_config()
        graph.invoke(START_STATE, config)
        before_review = next(s for s in graph.get_state_history(config) if s.next == ("review",))

        final = graph.invoke(None, before_review.config)

        self.assertEqual(final["log"], ["extract", "review", "publish"])
        self.assertEqual(final["count"], 3)
        # LangGraph replays on a "fork" copy of the middle checkpoint, a child
        # of it, then runs the two remaining steps on that branch.
        history = list(graph.get_state_history(config))
        self.assertEqual(
            [(metadata(s)["step"], metadata(s)["source"]) for s in history],
            [(4, "loop"), (3, "loop"), (2, "fork"), (3, "loop"), (2, "loop"), (1, "loop"), (0, "loop"), (-1, "input")],
        )
        fork = history[2]
        assert fork.parent_config is not None
        self.assertEqual(
            fork.parent_config["configurable"]["checkpoint_id"], before_review.config["configurable"]["checkpoint_id"]
        )
        self.assertEqual(fork.values, before_review.values)

    def test_forking_with_an_edited_state_runs_on_from_the_edit(self) -> None:
        graph = pipeline(DjangoCheckpointSaver())
        config = thread_config()
        graph.invoke(START_STATE, config)
        before_review = next(s for s in graph.get_state_history(config) if s.next == ("review",))

        fork_config = graph.update_state(before_review.config, {"log": ["edited"], "doc": {"title": "v2"}})
        final = graph.invoke(None, fork_config)

        self.assertEqual(final["log"], ["extract", "edited", "review", "publish"])
        self.assertEqual(final["doc"], {"title": "v2"})
        edit = graph.get_state(fork_config)
        self.assertEqual(metadata(edit)["source"], "update")
        self.assertEqual(edit.next, ("review",))

    def test_a_fork_into_a_new_thread_resumes_there_and_leaves_the_source_alone(self) -> None:
        saver = DjangoCheckpointSaver()
        graph = pipeline(saver)
        source = thread_config()
        graph.invoke(START_STATE, source)
        source_history = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(source)]
        before_publish = next(s for s in graph.get_state_history(source) if s.next == ("publish",))
        target_id = str(uuid.uuid4())

        saver.copy_thread(source["configurable"]["thread_id"], target_id)
        checkpoint_id = before_publish.config["configurable"]["checkpoint_id"]
        forked = graph.update_state(thread_config(target_id, checkpoint_id=checkpoint_id), {"log": ["note"]})
        final = graph.invoke(None, forked)

        self.assertEqual(final["log"], ["extract", "review", "note", "publish"])
        self.assertEqual(
            [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(source)], source_history
        )
        self.assertEqual(graph.get_state(source).values["log"], ["extract", "review", "publish"])

    def test_the_async_methods_run_a_graph_from_an_event_loop(self) -> None:
        graph = pipeline(DjangoCheckpointSaver())
        config = thread_config()

        async def run() -> tuple[dict[str, Any], list[int]]:
            final = await graph.ainvoke(START_STATE, config)
            steps = [metadata(s)["step"] async for s in graph.aget_state_history(config)]
            return final, steps

        final, steps = async_to_sync(run)()

        self.assertEqual(final["log"], ["extract", "review", "publish"])
        self.assertEqual(steps, [3, 2, 1, 0, -1])

    def test_runs_do_not_pile_up_connections_from_langgraphs_threads(self) -> None:
        # LangGraph writes from a thread pool of its own, new for each run:
        # those threads' connections go back to Django's pool (or are closed
        # without one) when they end, so more runs never mean more backends.
        def backends() -> int:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                return int(cursor.fetchone()[0])

        def settled(limit: int) -> int:
            # A closed connection's backend leaves pg_stat_activity a moment later.
            deadline = time.monotonic() + 5
            while backends() > limit and time.monotonic() < deadline:
                time.sleep(0.05)
            return backends()

        graph = ticker(DjangoCheckpointSaver(), until=5)
        before = backends()
        pool = connections["default"].pool
        # What is out before the runs: this thread's own, and any a long-lived thread of an earlier test holds.
        held = 1 if pool is None else max(1, pool.get_stats()["pool_size"] - pool.get_stats()["pool_available"])
        for _ in range(6):
            graph.invoke(START_STATE, thread_config())
        if pool is None:
            self.assertEqual(settled(before), before)
            return
        # Every connection a run's threads took is back in the pool (no more are out than before the
        # runs), and the pool stays within its bound. (A background write of the last run may still hold
        # one for a moment after invoke returns.)
        deadline = time.monotonic() + 5
        stats = pool.get_stats()
        while stats["pool_size"] - stats["pool_available"] > held and time.monotonic() < deadline:
            time.sleep(0.05)
            stats = pool.get_stats()
        self.assertLessEqual(stats["pool_size"] - stats["pool_available"], held, stats)
        self.assertLessEqual(settled(before), before + stats["pool_max"])


class CheckpointerStorageTests(TransactionTestCase):
    databases = {"default", "sqlite"}

    def test_unchanged_channels_are_stored_once_whatever_the_number_of_steps(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                steps = 12
                graph = ticker(DjangoCheckpointSaver(using=alias), until=steps)
                config = thread_config()
                thread_id = config["configurable"]["thread_id"]

                graph.invoke(START_STATE, config)

                blobs = CheckpointBlob.objects.using(alias).filter(thread_id=thread_id)
                self.assertEqual(Checkpoint.objects.using(alias).filter(thread_id=thread_id).count(), steps + 2)
                # doc: written once with the input, then only pointed at.
                self.assertEqual(blobs.filter(channel="doc").count(), 1)
                # log: one row per version (the input, then each step), never a copy.
                log_versions = {s.config["configurable"]["checkpoint_id"]: s for s in graph.get_state_history(config)}
                self.assertEqual(blobs.filter(channel="log").count(), steps + 1)
                self.assertEqual(len(log_versions), steps + 2)
                # count is a small int: inline in each checkpoint row, no blob.
                self.assertFalse(blobs.filter(channel="count").exists())
                self.assertEqual(graph.get_state(config).values["count"], steps)

    def test_a_put_is_one_statement_on_postgres_and_one_transaction_elsewhere(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                config = generate_config()
                checkpoint = generate_checkpoint(
                    channel_values={"doc": {"a": 1}, "n": 3}, channel_versions={"doc": 1, "n": 1}
                )
                with CaptureQueriesContext(connections[alias]) as put_queries:
                    stored = saver.put(config, checkpoint, generate_metadata(), {"doc": 1, "n": 1})
                with CaptureQueriesContext(connections[alias]) as write_queries:
                    saver.put_writes(stored, [("doc", {"a": 2}), ("n", 4)], "task-1", "path")

                put_sql = [q["sql"] for q in put_queries]
                write_sql = [q["sql"] for q in write_queries]
                if alias == "default":
                    # Blobs and checkpoint in one statement: one round trip, one commit.
                    self.assertEqual(len(put_sql), 1, put_sql)
                    self.assertIn("INSERT INTO orchestrator_checkpointblob", put_sql[0])
                    self.assertIn("INSERT INTO orchestrator_checkpoint ", put_sql[0])
                    self.assertEqual(len(write_sql), 1, write_sql)
                    self.assertIn("INSERT INTO orchestrator_checkpointwrite", write_sql[0])
                else:
                    # The blobs, then the checkpoint, committed together.
                    self.assertEqual([sql.split()[0] for sql in put_sql], ["BEGIN", "INSERT", "INSERT", "COMMIT"])
                    self.assertIn("orchestrator_checkpointblob", put_sql[1])
                    self.assertIn('orchestrator_checkpoint"', put_sql[2])
                    self.assertEqual([sql.split()[0] for sql in write_sql], ["BEGIN", "INSERT", "COMMIT"], write_sql)
                # And what was written reads back.
                read = saver.get_tuple(stored)
                assert read is not None
                self.assertEqual(read.checkpoint["channel_values"], {"doc": {"a": 1}, "n": 3})
                self.assertEqual(sorted((w[1], w[2]) for w in read.pending_writes), [("doc", {"a": 2}), ("n", 4)])

    def test_a_read_is_one_statement_on_postgres(self) -> None:
        saver = DjangoCheckpointSaver()
        graph = ticker(saver, until=3)
        config = thread_config()
        graph.invoke(START_STATE, config)
        with CaptureQueriesContext(connections["default"]) as get_queries:
            latest = saver.get_tuple(config)
        with CaptureQueriesContext(connections["default"]) as list_queries:
            history = list(saver.list(config))
        self.assertEqual(len(get_queries), 1, [q["sql"] for q in get_queries])
        self.assertEqual(len(list_queries), 1, [q["sql"] for q in list_queries])
        assert latest is not None
        self.assertEqual(latest.checkpoint["channel_values"]["doc"], START_STATE["doc"])
        self.assertEqual(history[0].checkpoint["channel_values"], latest.checkpoint["channel_values"])
        self.assertEqual(len(history), 5)

    def test_delete_thread_removes_that_threads_rows_only(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                graph = pipeline(saver)
                doomed, kept = thread_config(), thread_config()
                for config in (doomed, kept):
                    graph.invoke(START_STATE, config)

                kept_before = row_counts(alias, kept)
                self.assertTrue(all(row_counts(alias, doomed)))

                saver.delete_thread(doomed["configurable"]["thread_id"])

                self.assertEqual(row_counts(alias, doomed), [0, 0, 0])
                self.assertEqual(row_counts(alias, kept), kept_before)
                self.assertEqual(graph.get_state(kept).values["log"], ["extract", "review", "publish"])

    def test_prune_keeps_the_values_the_latest_checkpoint_points_at(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                graph = ticker(saver, until=6)
                config = thread_config()
                thread_id = config["configurable"]["thread_id"]
                graph.invoke(START_STATE, config)
                values = graph.get_state(config).values

                saver.prune([thread_id], strategy="keep_latest")

                self.assertEqual(Checkpoint.objects.using(alias).filter(thread_id=thread_id).count(), 1)
                self.assertEqual(graph.get_state(config).values, values)
                # doc and the last log version; older log versions were garbage.
                blobs = CheckpointBlob.objects.using(alias).filter(thread_id=thread_id)
                self.assertEqual(sorted(blobs.values_list("channel", flat=True)), ["doc", "log"])

    def test_prune_keeps_the_ancestors_a_delta_channel_replays(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                graph = delta_ticker(saver, until=7)
                config = thread_config()
                graph.invoke({"events": [], "count": 0}, config)
                self.assertEqual(graph.get_state(config).values["events"], list(range(7)))

                saver.prune([config["configurable"]["thread_id"]], strategy="keep_latest")

                # Step 5 holds the last snapshot; 6 and 7 replay their writes on it.
                self.assertEqual([metadata(s)["step"] for s in graph.get_state_history(config)], [7, 6, 5])
                self.assertEqual(graph.get_state(config).values, {"events": list(range(7)), "count": 7})

    def test_delete_for_runs_keeps_blobs_other_checkpoints_share(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                graph = pipeline(saver)
                config = thread_config()
                thread_id = config["configurable"]["thread_id"]
                graph.invoke(START_STATE, {**config, "metadata": {"run_id": "first"}})
                graph.invoke({"log": ["again"]}, {**config, "metadata": {"run_id": "second"}})
                blobs = CheckpointBlob.objects.using(alias).filter(thread_id=thread_id)
                doc_blobs = list(blobs.filter(channel="doc").values_list("pk", flat=True))

                saver.delete_for_runs(["second"])

                self.assertEqual({metadata(s)["run_id"] for s in graph.get_state_history(config)}, {"first"})
                values = graph.get_state(config).values
                self.assertEqual(values["log"], ["extract", "review", "publish"])
                self.assertEqual(values["doc"], START_STATE["doc"])
                self.assertEqual(list(blobs.filter(channel="doc").values_list("pk", flat=True)), doc_blobs)
                # The second run's log versions went with it.
                self.assertEqual(blobs.filter(channel="log").count(), 4)
                kept_ids = Checkpoint.objects.using(alias).filter(thread_id=thread_id).values("checkpoint_id")
                writes = CheckpointWrite.objects.using(alias).filter(thread_id=thread_id)
                self.assertFalse(writes.exclude(checkpoint_id__in=kept_ids).exists())


class CheckpointerValueTests(TransactionTestCase):
    databases = {"default", "sqlite"}

    def put_one(self, saver: DjangoCheckpointSaver, *, meta: dict[str, Any], values: dict[str, Any]) -> CheckpointTuple:
        checkpoint = generate_checkpoint(channel_values=values, channel_versions={k: 1 for k in values})
        stored = saver.put(generate_config(), checkpoint, generate_metadata(**meta), {k: 1 for k in values})
        found = saver.get_tuple(stored)
        assert found is not None
        return found

    def test_values_json_cannot_hold_round_trip_exactly(self) -> None:
        awkward: dict[str, Any] = {
            "nul": "a\x00b",
            "big_float": 1e300,
            "negative_zero": -0.0,
            "nan_free_float": 0.1,
            "huge_int": 10**30,
            "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "raw": b"\x00\xff",
            "marker_lookalike": {"__serde__": ["msgpack", "AA=="]},
            "int_keys": {1: "one"},
            "long_text": "y" * 5000,
        }
        for alias in ALIASES:
            with self.subTest(alias=alias):
                found = self.put_one(DjangoCheckpointSaver(using=alias), meta={"extra": awkward}, values=awkward)

                self.assertEqual(metadata(found)["extra"], awkward)
                self.assertEqual(found.checkpoint["channel_values"], awkward)
                self.assertEqual(type(found.checkpoint["channel_values"]["big_float"]), float)
                self.assertEqual(str(found.checkpoint["channel_values"]["negative_zero"]), "-0.0")

    def test_a_metadata_filter_matches_like_jsonb_containment(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                thread_id = str(uuid.uuid4())
                for step, flag, tags in [(1, True, ["a", "b"]), (2, 1, ["b"]), (3, False, [])]:
                    checkpoint = generate_checkpoint()
                    saver.put(
                        generate_config(thread_id),
                        checkpoint,
                        generate_metadata(step=step, flag=flag, tags=tags, nested={"k": step, "z": 0}),
                        {},
                    )

                self.assertEqual(listed_steps(saver, thread_id, filter={"flag": True}), [1])  # true is not 1
                self.assertEqual(listed_steps(saver, thread_id, filter={"flag": 1}), [2])
                self.assertEqual(listed_steps(saver, thread_id, filter={"tags": ["b"]}), [2, 1])
                self.assertEqual(listed_steps(saver, thread_id, filter={"nested": {"k": 3}}), [3])
                self.assertEqual(listed_steps(saver, thread_id, filter={"missing": None}), [])

    def test_list_pages_through_long_histories_with_filter_before_and_limit(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias), mock.patch.object(saver_module, "LIST_PAGE_SIZE", 3):
                saver = DjangoCheckpointSaver(using=alias)
                thread_id = str(uuid.uuid4())
                ids = []
                parent: RunnableConfig = generate_config(thread_id)
                for step in range(20):
                    checkpoint = generate_checkpoint(
                        channel_values={"items": [step]}, channel_versions={"items": step + 1}
                    )
                    source = "input" if step % 3 == 0 else "loop"
                    parent = saver.put(
                        parent, checkpoint, generate_metadata(source=source, step=step), {"items": step + 1}
                    )
                    ids.append(checkpoint["id"])

                everything = list(saver.list(generate_config(thread_id)))
                self.assertEqual([t.checkpoint["id"] for t in everything], ids[::-1])
                self.assertEqual(
                    [t.checkpoint["channel_values"]["items"] for t in everything], [[s] for s in range(19, -1, -1)]
                )
                inputs = listed_steps(saver, thread_id, filter={"source": "input"})
                self.assertEqual(inputs, [18, 15, 12, 9, 6, 3, 0])
                self.assertEqual(listed_steps(saver, thread_id, filter={"source": "input"}, limit=4), [18, 15, 12, 9])
                before = generate_config(thread_id, checkpoint_id=ids[10])
                self.assertEqual(listed_steps(saver, thread_id, before=before, limit=5), [9, 8, 7, 6, 5])
                # A page boundary (3) inside a limit (5) inside a filter: nothing lost or repeated.
                self.assertEqual(
                    listed_steps(saver, thread_id, filter={"source": "loop"}, limit=5), [19, 17, 16, 14, 13]
                )

    def test_special_writes_overwrite_their_slot_and_plain_writes_keep_the_first(self) -> None:
        for alias in ALIASES:
            with self.subTest(alias=alias):
                saver = DjangoCheckpointSaver(using=alias)
                stored = saver.put(generate_config(), generate_checkpoint(), generate_metadata(), {})

                saver.put_writes(stored, [("out", "first")], "task")
                saver.put_writes(stored, [("out", "second")], "task")
                saver.put_writes(stored, [(ERROR, "boom"), (INTERRUPT, "ask")], "task")
                saver.put_writes(stored, [(ERROR, "boom again")], "task")

                found = saver.get_tuple(stored)
                assert found is not None
                self.assertEqual(
                    sorted((channel, value) for _, channel, value in found.pending_writes or []),
                    sorted([("out", "first"), (ERROR, "boom again"), (INTERRUPT, "ask")]),
                )

    def test_get_checkpointer_is_one_shared_saver_on_the_default_database(self) -> None:
        self.assertIs(get_checkpointer(), get_checkpointer())
        self.assertEqual(get_checkpointer().using, "default")

    def test_versions_sort_as_strings_in_step_order(self) -> None:
        saver = DjangoCheckpointSaver()
        versions = [saver.get_next_version(None, None)]
        for _ in range(12):
            versions.append(saver.get_next_version(versions[-1], None))
        self.assertEqual(sorted(versions), versions)
        self.assertEqual(int(versions[-1].split(".")[0]), 13)
