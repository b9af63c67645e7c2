"""LangGraph's JS SDK (``@langchain/langgraph-sdk``, run by Node.js) against a live Loopgate with
real workers: start and stream a run (values, updates, messages), its interrupt, a Command resume,
the history (clients/js/journey.mjs does the client's part and prints what it saw)."""

from __future__ import annotations

import json
import uuid

import pytest

from approvals.models import Approval
from orchestrator.models import Execution
from tests.agent_api import node

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
NOTE_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "lg_note"))
DRAFT = "You wrote: “the launch”. I drafted a note for the team: let us meet at noon to settle it."
SENT = "Sent. The team has your note about “the launch” and meets at noon."


class JsJourneyTests:
    def test_the_js_sdk_streams_a_run_through_its_interrupt_and_reads_the_history(self, lg) -> None:
        done = node.node("journey.mjs", lg.url, lg.tokens["admin"])
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)

        assert seen["assistant"] == {"id": NOTE_ID, "graph_id": "lg_note"}
        first, resumed = seen["first"], seen["resumed"]
        assert first["events"][0] == "metadata" and first["metadata"]["run_id"]
        assert {"values", "updates", "messages/partial"} <= set(first["events"])
        # Tokens arrive one by one: the draft grows word by word to its final text.
        [draft] = [texts for texts in first["partials"].values() if texts[-1] == DRAFT]
        assert len(draft) > 5 and all(later.startswith(earlier) for earlier, later in zip(draft, draft[1:]))
        assert draft[0] != DRAFT
        assert first["updates"] == ["draft"]
        asks = [{
            "action_request": {"action": "send_note", "args": {"note": DRAFT}},
            "config": {"allow_accept": True, "allow_ignore": True, "allow_respond": False, "allow_edit": False},
            "description": "Send this note to the team?",
        }]
        assert first["interrupts"] == [asks]
        assert seen["inbox"] == [{"this_thread": True, "asks": [asks]}]  # as Agent Inbox lists it
        assert first["values"] == ["human: the launch", f"ai: {DRAFT}"]
        assert seen["thread_stopped"] == {"status": "interrupted", "next": ["confirm"]}

        assert resumed["events"][0] == "metadata"
        [sent] = [texts for texts in resumed["partials"].values() if texts[-1] == SENT]
        assert len(sent) > 5 and sent[0] != SENT
        assert resumed["updates"] == ["confirm"] and resumed["interrupts"] == []
        assert resumed["values"] == ["human: the launch", f"ai: {DRAFT}", f"ai: {SENT}"]
        assert seen["thread_done"] == {"status": "idle", "values": resumed["values"]}
        assert [(s["next"], s["source"], s["step"]) for s in seen["history"]] == [
            ([], "loop", 2), (["confirm"], "loop", 1), (["draft"], "loop", 0), (["__start__"], "input", -1)]

        # One run, one execution: the resume continued it, and the interrupt was an approval.
        execution = Execution.objects.get(langgraph_thread=seen["thread_id"])
        assert [r["run_id"] for r in seen["runs"]] == [str(execution.id)] and execution.status == "succeeded"
        approval = Approval.objects.get(execution=execution)
        assert (approval.status, approval.decided_by.username) == ("approved", "alice")
