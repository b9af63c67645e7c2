"""The JSON and chat viewer, ``{% load json_viewer %}``: shapes, limits, and escaping of hostile text."""

from __future__ import annotations

from django.test import SimpleTestCase
from django.utils.safestring import mark_safe

from orchestrator.templatetags import json_viewer as viewer
from tests.escaping import ESCAPED, HOSTILE, AssertSafeMixin, render_template


def render(source: str, **context) -> str:
    return render_template(source, "json_viewer", **context)


class JsonViewTests(SimpleTestCase, AssertSafeMixin):
    def test_scalars_and_containers(self):
        html = render("{% json_view v %}", v={"a": 1, "b": [True, None, "x", 2.5], "c": {}})
        self.assertIn('<div class="json-view">', html)
        self.assertIn('<details class="jv-node jv-object" open>', html)
        self.assertIn('<span class="jv-num">1</span>', html)
        self.assertIn('<span class="jv-bool">true</span>', html)
        self.assertIn('<span class="jv-null">null</span>', html)
        self.assertIn('<span class="jv-str">x</span>', html)
        self.assertIn('<span class="jv-empty">{}</span>', html)
        self.assertIn("{3 keys}", html)
        self.assertIn("[4 items]", html)

    def test_top_level_scalars(self):
        self.assertIn('<span class="jv-str">hello</span>', render("{% json_view v %}", v="hello"))
        self.assertIn('<span class="jv-null">null</span>', render("{% json_view v %}", v=None))
        self.assertIn('<span class="jv-empty">[]</span>', render("{% json_view v %}", v=[]))

    def test_deep_and_long_containers_start_closed(self):
        html = render("{% json_view v %}", v={"a": {"b": {"c": {"d": 1}}}})
        opened = html.count('class="jv-node jv-object" open')
        self.assertEqual(opened, 2)  # depth 0 and 1 open
        self.assertEqual(html.count('class="jv-node jv-object"'), 4)
        many = render("{% json_view v %}", v=list(range(21)))
        self.assertIn('<details class="jv-node jv-array">', many)
        few = render("{% json_view v %}", v=list(range(20)))
        self.assertIn('<details class="jv-node jv-array" open>', few)

    def test_depth_is_guarded(self):
        value: dict = {}
        node = value
        for _ in range(40):
            node["n"] = {}
            node = node["n"]
        html = render("{% json_view v %}", v=value)
        self.assertIn('class="jv-ellipsis"', html)
        self.assertLessEqual(html.count("<details"), viewer.MAX_DEPTH)

    def test_long_strings_are_truncated_with_show_all(self):
        text = "word " * 100
        html = render("{% json_view v %}", v={"note": text})
        self.assertIn("show all (500 characters)", html)
        self.assertIn(text[: viewer.MAX_STRING] + "…", html)
        self.assertIn(f'<div class="jv-full jv-str">{text}</div>', html)
        self.assertNotIn("show all", render("{% json_view v %}", v="x" * 300))

    def test_huge_lists_are_counted_not_all_rendered(self):
        html = render("{% json_view v %}", v=list(range(viewer.MAX_ITEMS + 7)))
        self.assertIn("… 7 more not shown", html)

    def test_langchain_messages_are_chat_bubbles_with_tool_calls(self):
        messages = [
            {"type": "system", "content": "Be brief."},
            {"type": "human", "content": "Send the Q3 report to alice@example.com"},
            {
                "type": "ai",
                "content": "",
                "tool_calls": [{"name": "send_email", "args": {"to": "alice@example.com", "subject": "Q3"}, "id": "c1"}],
                "usage_metadata": {"input_tokens": 1200, "output_tokens": 30},
            },
            {"type": "tool", "content": "sent", "tool_call_id": "c1", "name": "send_email"},
        ]
        html = render("{% json_view v %}", v={"messages": messages})
        self.assertIn("[4 messages]", html)
        self.assertIn('<div class="chat">', html)
        for kind in ("system", "human", "ai", "tool"):
            self.assertIn(f'class="bubble bubble-{kind}"', html)
        self.assertIn('<strong class="mono">send_email</strong>', html)
        self.assertIn('<th scope="row" class="mono">to</th>', html)
        self.assertIn('<span class="jv-str">alice@example.com</span>', html)
        self.assertIn("1,200 in · 30 out tokens", html)

    def test_openai_and_lc_constructor_messages(self):
        html = render(
            "{% json_view v %}",
            v=[
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}],
                },
                {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"],
                 "kwargs": {"content": "done"}},
            ],
        )
        self.assertIn("bubble-human", html)
        self.assertIn('<strong class="mono">lookup</strong>', html)
        self.assertIn('<th scope="row" class="mono">q</th>', html)
        self.assertIn("done", html)
        self.assertEqual(html.count('class="bubble bubble-ai"'), 2)

    def test_content_blocks(self):
        html = render(
            "{% json_view v %}",
            v={"type": "ai", "content": [{"type": "text", "text": "Looking."}, {"type": "image_url", "image_url": "x"}]},
        )
        self.assertIn('<div class="bubble-text"><span class="jv-str">Looking.</span></div>', html)
        self.assertIn('class="bubble-block"', html)

    def test_hostile_keys_values_and_message_contents_are_escaped(self):
        value = {
            HOSTILE: HOSTILE,
            "list": [HOSTILE, {HOSTILE: [HOSTILE]}],
            "long": HOSTILE * 10,
            "messages": [
                {"type": "human", "content": HOSTILE, "name": HOSTILE},
                {"type": "ai", "content": [{"type": "text", "text": HOSTILE}],
                 "tool_calls": [{"name": HOSTILE, "args": {HOSTILE: HOSTILE}, "id": HOSTILE}]},
                {"type": "tool", "content": HOSTILE, "tool_call_id": HOSTILE},
                {"role": "assistant", "content": HOSTILE,
                 "tool_calls": [{"id": "1", "function": {"name": HOSTILE, "arguments": HOSTILE}}]},
            ],
        }
        html = render("{% json_view v %}", v=value)
        self.assertNoLiveMarkup(html)
        self.assertGreaterEqual(html.count(ESCAPED), 12)

    def test_data_marked_safe_upstream_is_still_text(self):
        hostile = mark_safe(HOSTILE)
        self.assertNoLiveMarkup(render("{% json_view v %}", v={hostile: hostile, "m": [{"type": "human", "content": hostile}]}))

    def test_the_cached_viewer_renders_as_json_view_does_and_stays_escaped_when_served_from_the_cache(self):
        import uuid

        value = {"m": [{"type": "human", "content": HOSTILE}], HOSTILE: HOSTILE}
        key = f"test-{uuid.uuid4()}"
        first = render("{% json_view_cached v k %}", v=value, k=key)
        again = render("{% json_view_cached v k %}", v={"other": "value"}, k=key)  # same key: the cached render
        self.assertEqual(first, render("{% json_view v %}", v=value))
        self.assertEqual(again, first)
        self.assertNoLiveMarkup(again)
