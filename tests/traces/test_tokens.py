"""The execution page's growing LLM message (traces/tokens.py): who may follow it, and how log entries
become what the page shows (the streaming itself is tested in a browser, tests/browser/test_live_tokens.py)."""

from __future__ import annotations

from django.urls import reverse

from tests.base import PageTestCase
from tests.traces.builders import make_execution
from traces import tokens


def _entry(content: str, *, kind: str = "AIMessageChunk", last: bool = False, message_id: str = "m1") -> dict:
    return {"mode": "messages", "ns": [],
            "data": [{"type": kind, "content": content, "id": message_id,
                      "chunk_position": "last" if last else None}, {"langgraph_node": "write"}]}


class TokensEndpointTests(PageTestCase):
    def test_only_people_who_may_read_the_execution_follow_its_tokens(self) -> None:
        execution = make_execution(created_by=self.users["operator"])
        url = reverse("traces:tokens", args=[execution.id])
        assert self.client.get(url).status_code == 302  # to the login page
        self.login("outsider")
        assert self.client.get(url).status_code == 404


class TokenShapeTests(PageTestCase):
    def test_an_ai_chunk_becomes_its_text_node_and_whether_it_is_whole(self) -> None:
        assert tokens.token(_entry("Hel")) == {"id": "m1", "node": "write", "text": "Hel", "done": False}
        assert tokens.token(_entry("", last=True))["done"]
        assert tokens.token(_entry("whole", kind="ai"))["done"]
        assert tokens.token({"mode": "updates", "ns": [], "data": {}}) is None
        assert tokens.token(_entry("a question", kind="human")) is None

    def test_a_page_opened_mid_answer_starts_with_the_newest_message_so_far(self) -> None:
        log = [("1-0", _entry("Old", message_id="m0")), ("2-0", _entry("Hel")), ("3-0", _entry("lo")),
               ("4-0", {"mode": "values", "ns": [], "data": {}})]
        assert tokens._catch_up(log) == {"id": "m1", "node": "write", "text": "Hello", "done": False}
        assert tokens._catch_up([]) is None
