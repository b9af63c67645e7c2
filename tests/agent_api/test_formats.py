"""command.resume in each interrupt format the inbox knows, through the SDK: LangChain's
HumanInTheLoopMiddleware, Agent Inbox's HumanInterrupt, and several interrupts at once."""

from __future__ import annotations

import pytest

from approvals.models import Approval
from tests.agent_api.test_hitl import refused
from tests.approvals.graphs import EMAIL

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class FormatTests:
    def test_langchains_middleware_is_resumed_with_its_decisions_and_an_edit_is_checked(self, lg) -> None:
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        tid = operator.threads.create()["thread_id"]
        out = operator.runs.wait(tid, "t_hitl_agent", input={"messages": [{"role": "user", "content": "mail it"}]})
        request = out["__interrupt__"][0]["value"]
        assert request["action_requests"][0]["name"] == "send_email"
        status, body = refused(reviewer.runs.wait, tid, "t_hitl_agent", command={"resume": {"type": "approve"}})
        assert status == 422 and "decisions" in body
        edited = {**EMAIL, "to": "bob@example.com"}
        final = reviewer.runs.wait(tid, "t_hitl_agent", command={"resume": {"decisions": [
            {"type": "edit", "edited_action": {"name": "send_email", "args": edited}}]}})
        assert "sent to bob@example.com" in final["messages"][-1]["content"]
        approval = Approval.objects.get(execution__langgraph_thread=tid)
        assert approval.status == "edited" and approval.decision == [{"type": "edit", "args": edited}]

    def test_agent_inbox_is_resumed_with_human_responses(self, lg) -> None:
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        tid = operator.threads.create()["thread_id"]
        out = operator.runs.wait(tid, "t_inbox", input={"topic": "Owls"})
        assert out["__interrupt__"][0]["value"][0]["action_request"]["action"] == "publish_post"
        out = reviewer.runs.wait(tid, "t_inbox", command={"resume": [{"type": "accept", "args": None}]})
        assert out["__interrupt__"][0]["value"][0]["action_request"]["action"] == "ask_reader"
        final = reviewer.runs.wait(tid, "t_inbox", command={"resume": [{"type": "response", "args": "Bats"}]})
        assert [r["type"] for r in final["responses"]] == ["accept", "response"]
        assert final["responses"][1]["args"] == "Bats"

    def test_several_interrupts_are_resumed_with_a_map_by_interrupt_id(self, lg) -> None:
        operator, reviewer = lg.sync("operator"), lg.sync("reviewer")
        tid = operator.threads.create()["thread_id"]
        out = operator.runs.wait(tid, "t_branches", input={})
        ids = {i["value"]: i["id"] for i in out["__interrupt__"]}
        assert set(ids) == {"Go left?", "Go right?"}
        status, body = refused(reviewer.runs.wait, tid, "t_branches", command={"resume": {"type": "approve"}})
        assert status == 422 and "map from interrupt id" in body
        final = reviewer.runs.wait(tid, "t_branches", command={"resume": {
            ids["Go left?"]: {"type": "approve"}, ids["Go right?"]: {"type": "reject", "message": "no"}}})
        assert final["joined"] is True
        answers = {side: answer["type"] for side, answer in final["answers"]}
        assert answers == {"left": "approve", "right": "reject"}
