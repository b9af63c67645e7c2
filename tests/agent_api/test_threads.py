"""Threads and time travel through the SDK: update_state never skips a person, a busy thread refuses
a second run, and the small thread operations (patch, count, delete, state at a checkpoint)."""

from __future__ import annotations

import pytest

from approvals.models import Approval
from orchestrator.models import Execution
from tests.agent_api.test_hitl import _interrupted, refused
from tests.services import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class GateTests:
    def test_writing_the_gate_nodes_answer_with_update_state_makes_the_next_run_wait_for_a_reviewer(self, lg) -> None:
        tid, first_run, asked = _interrupted(lg, topic="moths")
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        # As LangGraph allows: write the review node's answer, then run on without it asking.
        operator.threads.update_state(tid, {"decision": "approve", "log": ["review"]}, as_node="review")
        run = operator.runs.create(tid, "lg_review", input=None)
        wait_for(lambda: operator.runs.get(tid, run["run_id"])["status"] == "interrupted", timeout=60,
                 what="the run to wait at the gate")
        state = operator.threads.get_state(tid)
        assert state["next"] == ["publish"] and "published" not in state["values"]  # publish has not run
        hold = Approval.objects.get(execution_id=run["run_id"], status="pending")
        assert hold.node == "review" and "asks a person" in hold.actions[0]["description"]
        assert Approval.objects.get(id=asked.id).status == "cancelled"  # the superseded run's question
        assert Execution.objects.get(id=first_run).status == "cancelled"

        # An operator cannot let it through; a reviewer can, with a decision like any other.
        status, _ = refused(operator.runs.wait, tid, "lg_review", command={"resume": {"type": "approve"}})
        assert status == 403
        final = reviewer.runs.wait(tid, "lg_review", command={"resume": {"type": "approve"}})
        assert final["published"] is True and final["log"] == ["write", "review", "publish"]
        hold.refresh_from_db()
        assert hold.status == "approved" and hold.decided_by.username == "rita"

    def test_updating_a_waiting_threads_state_supersedes_its_question_and_the_next_run_asks_again(self, lg) -> None:
        tid, first_run, asked = _interrupted(lg, topic="wasps")
        operator = lg.sync("operator")
        operator.threads.update_state(tid, {"draft": "Wasps, rewritten"}, as_node="write")
        assert Execution.objects.get(id=first_run).status == "cancelled"
        assert Approval.objects.get(id=asked.id).status == "cancelled"
        out = operator.runs.wait(tid, "lg_review", input=None)
        assert out["__interrupt__"][0]["value"]["draft"] == "Wasps, rewritten"
        final = lg.sync("reviewer").runs.wait(tid, "lg_review", command={"resume": {"type": "approve"}})
        assert final["draft"] == "Wasps, rewritten" and final["published"] is True

    def test_a_run_with_input_from_a_checkpoint_written_past_a_gate_is_refused(self, lg) -> None:
        tid, _run, _asked = _interrupted(lg, topic="gnats")
        operator = lg.sync("operator")
        operator.threads.update_state(tid, {"decision": "approve"}, as_node="review")
        status, body = refused(operator.runs.create, tid, "lg_review", input={"topic": "other"})
        assert status == 409 and "past “review”" in body

    def test_update_state_names_an_unknown_node_and_refuses_while_a_run_is_busy(self, lg) -> None:
        tid, _run, _asked = _interrupted(lg, topic="ants")
        operator = lg.sync("operator")
        status, body = refused(operator.threads.update_state, tid, {"draft": "x"}, as_node="nope")
        assert status == 422 and "'nope' is not a node" in body
        slow = operator.threads.create()["thread_id"]
        operator.runs.create(slow, "lg_slow", input={"limit": 30})
        status, body = refused(operator.threads.update_state, slow, {"n": 0}, as_node="tick")
        assert status == 409
        status, body = refused(operator.runs.create, slow, "lg_slow", input={"limit": 1},
                               multitask_strategy="reject")
        assert status == 409 and "busy" in body
        operator.runs.cancel_many(thread_id=slow, run_ids=[r["run_id"] for r in operator.runs.list(slow)])
        wait_for(lambda: operator.threads.get(slow)["status"] == "interrupted", timeout=60, what="the cancel")


class ThreadOperationTests:
    def test_patch_count_state_at_a_checkpoint_and_delete(self, lg) -> None:
        operator = lg.sync("operator")
        thread = operator.threads.create(metadata={"a": 1})
        tid = thread["thread_id"]
        assert operator.threads.update(tid, metadata={"b": 2})["metadata"] == {"a": 1, "b": 2}
        assert operator.threads.count(metadata={"b": 2}) == 1
        assert operator.threads.search(ids=[tid])[0]["thread_id"] == tid
        same = operator.threads.create(thread_id=tid, if_exists="do_nothing")
        assert same["thread_id"] == tid
        status, _ = refused(operator.threads.create, thread_id=tid)
        assert status == 409

        operator.runs.wait(tid, "lg_echo", input={"text": "x"})
        history = operator.threads.get_history(tid)
        first = history[-1]["checkpoint"]
        at = operator.threads.get_state(tid, checkpoint=first)
        assert at["next"] == ["__start__"] and at["checkpoint"]["checkpoint_id"] == first["checkpoint_id"]
        assert operator.threads.get_state(tid, checkpoint_id=first["checkpoint_id"])["values"] == at["values"]
        assert len(operator.threads.get_history(tid, limit=2)) == 2
        assert len(operator.threads.get_history(tid, before=history[1]["checkpoint"])) == len(history) - 2
        assert operator.threads.get_history(tid, metadata={"source": "input"})[0]["next"] == ["__start__"]
        assert operator.threads.get_state(tid)["values"] == {"text": "X", "steps": ["shout", "count:1"]}

        status, _ = refused(lg.sync("reviewer").threads.delete, tid)
        assert status == 403
        operator.threads.delete(tid)
        status, _ = refused(operator.threads.get, tid)
        assert status == 404
        # Its run stays an execution: the executions list and the audit keep it.
        assert Execution.objects.filter(langgraph_thread=tid).count() == 1

    def test_a_run_on_a_thread_that_does_not_exist_is_404_unless_asked_to_create_it(self, lg) -> None:
        import uuid

        operator = lg.sync("operator")
        missing = str(uuid.uuid4())
        status, _ = refused(operator.runs.create, missing, "lg_echo", input={"text": "x"})
        assert status == 404
        out = operator.runs.wait(missing, "lg_echo", input={"text": "y"}, if_not_exists="create")
        assert out == {"text": "Y", "steps": ["shout", "count:1"]}
        assert operator.threads.get(missing)["metadata"]["graph_id"] == "lg_echo"


class BudgetTests:
    def test_a_run_stopped_by_its_token_budget_is_an_error_naming_the_budget(self, lg) -> None:
        from orchestrator import budgets

        budgets.graph_budget_set(user=lg.users["admin"], graph_name="t_budget_loop", token_budget=3_000,
                                 daily_token_limit=None)
        operator = lg.sync("operator")
        tid = operator.threads.create()["thread_id"]
        out = operator.runs.wait(tid, "t_budget_loop", input={"n": 0}, raise_error=False)
        assert "3,000 token budget" in out["__error__"]["message"], out
        with pytest.raises(Exception, match="token budget"):
            operator.runs.wait(tid, "t_budget_loop", input={"n": 0})  # the SDK raises on __error__ by default
        runs = operator.runs.list(tid)
        assert [r["status"] for r in runs] == ["error", "error"]
        assert operator.threads.get(tid)["status"] == "error"
        assert Execution.objects.get(id=runs[-1]["run_id"]).status == "budget_exceeded"


class MultitaskTests:
    def test_interrupt_stops_the_busy_run_and_starts_from_where_it_stopped(self, lg) -> None:
        operator = lg.sync("operator")
        tid = operator.threads.create()["thread_id"]
        first = operator.runs.create(tid, "lg_slow", input={"limit": 200})
        wait_for(lambda: operator.runs.get(tid, first["run_id"])["status"] == "running", timeout=60,
                 what="the first run to run")
        out = operator.runs.wait(tid, "lg_slow", input={"limit": 0}, multitask_strategy="interrupt")
        assert operator.runs.get(tid, first["run_id"])["status"] == "interrupted"
        assert 1 <= out["n"] < 200 and out["limit"] == 0  # one more tick on top of the interrupted run's count
        status, body = refused(operator.runs.create, tid, "lg_slow", input={}, multitask_strategy="rollback")
        assert status == 422 and "rollback" in body


class SearchTests:
    def test_search_filters_by_metadata_values_and_status_sorts_and_pages(self, lg) -> None:
        operator = lg.sync("operator")
        made = [operator.threads.create(metadata={"batch": "s", "i": i})["thread_id"] for i in range(3)]
        operator.runs.wait(made[1], "lg_echo", input={"text": "found"})
        assert operator.threads.count(metadata={"batch": "s"}) == 3
        newest_first = operator.threads.search(metadata={"batch": "s"}, limit=10)
        assert [t["thread_id"] for t in newest_first] == made[::-1]
        oldest_first = operator.threads.search(metadata={"batch": "s"}, sort_by="created_at", sort_order="asc",
                                               limit=2, offset=1)
        assert [t["thread_id"] for t in oldest_first] == made[1:]
        by_values = operator.threads.search(values={"text": "FOUND"})
        assert [t["thread_id"] for t in by_values] == [made[1]]
        assert operator.threads.count(metadata={"batch": "s"}, status="idle") == 3
        assert operator.threads.search(metadata={"batch": "s"}, status="busy") == []
        status, body = refused(operator.threads.search, status="sleeping")
        assert status == 422 and "status" in body


class WaitingTests:
    def test_a_client_waiting_on_a_run_does_not_hold_up_others_and_sees_its_cancel(self, lg) -> None:
        import threading

        operator = lg.sync("operator")
        tid = operator.threads.create()["thread_id"]
        run = operator.runs.create(tid, "lg_slow", input={"limit": 500})
        joined: list = []
        waiter = threading.Thread(target=lambda: joined.append(lg.sync("reviewer").runs.join(tid, run["run_id"])))
        waiter.start()
        wait_for(lambda: operator.runs.get(tid, run["run_id"])["status"] == "running", timeout=60, what="the run")
        operator.runs.cancel(tid, run["run_id"])  # answered while the join waits
        waiter.join(timeout=60)
        assert not waiter.is_alive() and joined[0]["limit"] == 500 and joined[0].get("n", 0) < 500
        assert operator.runs.get(tid, run["run_id"])["status"] == "interrupted"


class RefusalChangesNothingTests:
    def test_a_refused_stateless_or_if_not_exists_run_leaves_no_thread_behind(self, lg) -> None:
        import uuid

        from agent_api.models import Thread

        operator = lg.sync("operator")
        before = Thread.objects.count()
        status, body = refused(operator.runs.wait, None, "no_such_graph", input={})
        assert status == 404 and "no_such_graph" in body
        status, body = refused(operator.runs.create, str(uuid.uuid4()), "lg_echo", input={"nope": 1},
                               if_not_exists="create")
        assert status == 422 and "nope" in body
        status, _ = refused(lg.sync("reviewer").runs.wait, None, "lg_echo", input={"text": "x"})
        assert status == 403
        assert Thread.objects.count() == before
        assert not Execution.objects.filter(graph_name="lg_echo").exists()


class EnqueueTests:
    def test_enqueued_runs_wait_their_turn_in_order_and_a_cancelled_one_is_skipped(self, lg) -> None:
        operator = lg.sync("operator")
        tid = operator.threads.create()["thread_id"]
        first = operator.runs.create(tid, "lg_slow", input={"limit": 3})
        second = operator.runs.create(tid, "lg_slow", input={"limit": 5}, multitask_strategy="enqueue")
        third = operator.runs.create(tid, "lg_slow", input={"limit": 4}, multitask_strategy="enqueue")
        fourth = operator.runs.create(tid, "lg_slow", input={"limit": 6}, multitask_strategy="enqueue")
        assert [second["status"], third["status"], fourth["status"]] == ["pending"] * 3
        assert operator.runs.get(tid, second["run_id"])["multitask_strategy"] == "enqueue"
        operator.runs.cancel_many(thread_id=tid, run_ids=[third["run_id"]])
        assert operator.runs.get(tid, third["run_id"])["status"] == "interrupted"

        assert operator.runs.join(tid, second["run_id"]) == {"n": 5, "limit": 5}
        assert operator.runs.join(tid, fourth["run_id"]) == {"n": 6, "limit": 6}
        statuses = {r["run_id"]: r["status"] for r in operator.runs.list(tid)}
        assert statuses == {first["run_id"]: "success", second["run_id"]: "success",
                            third["run_id"]: "interrupted", fourth["run_id"]: "success"}
        started = Execution.objects.filter(langgraph_thread=tid).order_by("created_at")
        assert [str(e.id) for e in started] == [first["run_id"], second["run_id"], fourth["run_id"]]
        assert {e.created_by.username for e in started} == {"otto"}


class ConfigTests:
    def test_a_runs_configurable_cannot_redirect_it_to_another_thread_or_checkpoint(self, lg) -> None:
        operator = lg.sync("operator")
        tid = operator.threads.create()["thread_id"]
        other = operator.threads.create()["thread_id"]
        first = operator.runs.wait(tid, "lg_echo", input={"text": "a"})
        sneaky = {"configurable": {"thread_id": other, "checkpoint_id": "1f0000000000000000000000000000000",
                                   "loopgate_lease": {"execution_id": "x", "token": "y"}, "tone": "dry"}}
        out = operator.runs.wait(tid, "lg_echo", input={"text": "b"}, config=sneaky)
        assert out == {"text": "B", "steps": first["steps"] + ["shout", "count:3"]}
        assert operator.threads.get(other)["values"] is None
        execution = Execution.objects.filter(langgraph_thread=tid).order_by("-created_at").first()
        assert execution.run_start["configurable"] == {"tone": "dry"}
