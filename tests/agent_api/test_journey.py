"""The SDK journey against Loopgate, sync and async: what a LangGraph client sees, and that every
run is an ordinary execution (executions list, approvals decided by the token's user, audit)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from approvals.models import Approval
from orchestrator.models.audit import AuditEntry
from orchestrator.models import Execution
from tests.agent_api.journey import EDIT, journey

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
REVIEW_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "lg_review"))
LOG = ["write", "review", "publish"]


class SyncJourneyTests:
    def test_the_python_sdk_journey(self, lg) -> None:
        seen = journey(lg.sync("operator"), lg.sync("reviewer"))

        assert seen["assistant"]["assistant_id"] == REVIEW_ID
        assert seen["new_thread"] == {"metadata": {"team": "docs"}, "status": "idle", "values": None}
        assert seen["interrupted_values"] == {"topic": "cats", "draft": "A post about cats", "log": ["write"]}
        assert seen["interrupt_value"]["action"] == "publish"
        assert seen["thread_interrupted"] == "interrupted"
        assert seen["interrupted_state"] == {"next": ["review"], "task": "review", "task_interrupts": ["publish"],
                                             "interrupts": ["publish"]}
        assert seen["resumed"] == {"topic": "cats", "draft": "Cats, revised", "decision": "edit", "published": True,
                                   "log": LOG}
        assert seen["thread_after_resume"] == "idle"
        assert seen["history"] == [([], "loop", 3), (["publish"], "loop", 2), (["review"], "loop", 1),
                                   (["write"], "loop", 0), (["__start__"], "input", -1)]
        assert seen["old_checkpoint_values"] == {"topic": "cats", "draft": "A post about cats", "log": ["write"]}
        assert seen["updated_state"] == {"values": {"topic": "cats", "draft": "Dogs instead", "log": ["write"]},
                                         "next": ["review"], "source": "update"}
        assert seen["run_from_update_asks"] == "Dogs instead"
        assert seen["approved"] == {"topic": "cats", "draft": "Dogs instead", "decision": "approve",
                                    "published": True, "log": LOG}
        assert seen["copy_values"] == seen["approved"]
        assert seen["copy_metadata"]["team"] == "docs" and seen["copy_metadata"]["graph_id"] == "lg_review"
        assert seen["stateless"] == {"text": "HI", "steps": ["shout", "count:1"]}
        assert seen["background_created"] == {"status": "pending", "multitask_strategy": "enqueue"}
        assert seen["joined"] == {"text": "A", "steps": ["shout", "count:1"]}
        assert seen["background_done"]["status"] == "success"
        assert seen["background_list"] == [(True, "success")]
        # A thread carries many runs: the second starts from the first one's state.
        assert seen["second_run_on_thread"] == {"text": "B", "steps": ["shout", "count:1", "shout", "count:3"]}
        assert seen["command_update"] == {"text": "zzz", "steps": ["shout", "count:1", "shout", "count:3"]}
        assert seen["fork_with_input"] == {"text": "FORK", "steps": ["shout", "count:1"]}
        assert seen["replay"] == {"text": "A", "steps": ["shout", "count:1"]}
        assert seen["cancelled"] == "interrupted" and seen["cancelled_thread"] == "interrupted"
        assert seen["search_finds"] == [False, True] and seen["search_by_status"]

        # One system, two doors: every run is an execution on the thread, decided approvals audited.
        ids = seen["ids"]
        on_thread = Execution.objects.filter(langgraph_thread=ids["thread"]).order_by("created_at")
        assert [e.status for e in on_thread] == ["succeeded", "succeeded"]
        assert {e.created_by.username for e in on_thread} == {"otto"}
        decided = Approval.objects.filter(execution__in=on_thread).order_by("created_at")
        assert [(a.status, a.decided_by.username) for a in decided] == [("edited", "rita"), ("approved", "rita")]
        assert decided[0].resume_value == {**EDIT, "by": "rita"}
        assert not Approval.objects.filter(execution__in=on_thread, status="pending").exists()
        audit = AuditEntry.objects.filter(approval_id__in=[a.id for a in decided]).order_by("created_at")
        assert [(e.actor_name, e.outcome) for e in audit] == [("rita", "edited"), ("rita", "approved")]
        cancelled = Execution.objects.get(id=ids["long_run"])
        assert cancelled.status == "cancelled" and cancelled.langgraph_thread == ids["slow"]
        assert Execution.objects.get(id=ids["run"]).graph_name == "lg_echo"


class AsyncJourneyTests:
    def test_the_async_client_runs_resumes_and_reads_state(self, lg) -> None:
        async def go() -> dict:
            operator, reviewer = lg.aio("operator"), lg.aio("reviewer")
            try:
                thread = await operator.threads.create(metadata={"door": "async"})
                tid = thread["thread_id"]
                run = await operator.runs.create(tid, "lg_review", input={"topic": "owls"})
                stopped = await operator.runs.join(tid, run["run_id"])
                assert stopped["__interrupt__"][0]["value"]["draft"] == "A post about owls"
                assert (await operator.runs.get(tid, run["run_id"]))["status"] == "interrupted"
                assert (await operator.threads.get(tid))["status"] == "interrupted"
                resumed = await reviewer.runs.create(tid, "lg_review", command={"resume": {"type": "approve"}})
                final = await reviewer.runs.join(tid, resumed["run_id"])
                history = await operator.threads.get_history(tid, limit=3)
                found = await operator.threads.search(metadata={"door": "async"})
                return {"final": final, "history": len(history), "found": [t["thread_id"] == tid for t in found],
                        "status": (await operator.threads.get(tid))["status"]}
            finally:
                await operator.aclose()
                await reviewer.aclose()

        seen = asyncio.run(go())
        assert seen["final"] == {"topic": "owls", "draft": "A post about owls", "decision": "approve",
                                 "published": True, "log": LOG}
        assert seen == {**seen, "history": 3, "found": [True], "status": "idle"}
