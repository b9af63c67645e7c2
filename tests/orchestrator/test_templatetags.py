"""The shared template tags and filters of ``{% load loopgate %}``: formats, and escaping of hostile text."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from types import SimpleNamespace

from django.template import Context, Template
from django.test import SimpleTestCase, override_settings
from django.utils import timezone

from orchestrator.templatetags import loopgate as lg

HOSTILE = '<script>window.__x=1</script><img src=x onerror="window.__x=2">'
ESCAPED = "&lt;script&gt;window.__x=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__x=2&quot;&gt;"


def render(source: str, **context) -> str:
    return Template("{% load loopgate %}" + source).render(Context(context))


class AssertSafeMixin:
    def assertNoLiveMarkup(self, html: str) -> None:
        """No hostile tag or attribute survives unescaped; the text is there, escaped."""
        self.assertNotIn("<script", html)
        self.assertNotIn("<img", html)
        self.assertNotIn('onerror="', html)
        self.assertIn(ESCAPED, html)


class StatusBadgeTests(SimpleTestCase, AssertSafeMixin):
    def test_tag_and_filter_render_the_same_badge_with_text(self):
        execution = SimpleNamespace(status="running")
        as_tag = render("{% status_badge e %}", e=execution)
        as_filter = render("{{ s|status_badge }}", s="running")
        self.assertEqual(as_tag, as_filter)
        self.assertIn('class="badge badge-running"', as_tag)
        self.assertIn(">running</span>", as_tag)

    def test_human_labels_for_interrupted_and_budget_exceeded(self):
        self.assertIn("waiting for review", render("{{ s|status_badge }}", s="interrupted"))
        self.assertIn("over budget", render("{{ s|status_badge }}", s="budget_exceeded"))
        self.assertIn("badge-budget_exceeded", render("{{ s|status_badge }}", s="budget_exceeded"))
        self.assertEqual(render("{{ s|status_label }}", s="interrupted"), "waiting for review")

    def test_every_execution_status_has_a_badge_class_and_a_label(self):
        from orchestrator.models import Execution

        for value, label in Execution.Status.choices:
            html = render("{% status_badge s %}", s=value)
            self.assertIn(f"badge-{value}", html)
            self.assertIn(f">{label}</span>", html)

    def test_unknown_or_hostile_status_is_escaped_and_class_safe(self):
        html = render("{% status_badge s %}", s=HOSTILE)
        self.assertNoLiveMarkup(html)
        css = re.search(r'class="badge ([^"]*)"', html).group(1)
        self.assertRegex(css, r"^badge-[a-z0-9_-]+$")
        self.assertIn("unknown", render("{% status_badge s %}", s=None))


@override_settings(TIME_ZONE="UTC")
class ReltimeTests(SimpleTestCase):
    def test_past_times_read_as_ago_with_exact_time_on_hover(self):
        when = timezone.now() - dt.timedelta(minutes=4, seconds=5)
        html = render("{{ t|reltime }}", t=when)
        self.assertIn(">4 min ago</time>", html)
        self.assertIn(f'datetime="{when.isoformat()}"', html)
        self.assertIn(f'title="{when:%Y-%m-%d %H:%M:%S} UTC"', html)

    def test_future_times_read_as_in(self):
        html = render("{{ t|reltime }}", t=timezone.now() + dt.timedelta(minutes=5, seconds=10))
        self.assertIn(">in 5 min</time>", html)

    def test_hours_days_and_just_now(self):
        now = timezone.now()
        self.assertIn(">just now<", render("{{ t|reltime }}", t=now - dt.timedelta(seconds=10)))
        self.assertIn(">2 h ago<", render("{{ t|reltime }}", t=now - dt.timedelta(hours=2, minutes=5)))
        self.assertIn(">1 day ago<", render("{{ t|reltime }}", t=now - dt.timedelta(hours=25)))
        self.assertIn(">3 days ago<", render("{{ t|reltime }}", t=now - dt.timedelta(days=3)))

    def test_a_prefix_reads_as_an_ongoing_wait(self):
        html = render('{{ t|reltime:"waiting" }}', t=timezone.now() - dt.timedelta(hours=2))
        self.assertIn(">waiting 2 h</time>", html)
        self.assertIn('data-reltime="waiting"', html)

    def test_old_dates_show_the_date(self):
        html = render("{{ t|reltime }}", t=dt.datetime(2020, 3, 12, 9, 30, tzinfo=dt.timezone.utc))
        self.assertIn(">12 Mar 2020</time>", html)

    def test_none_and_naive_values(self):
        self.assertEqual(render("{{ t|reltime }}", t=None), "—")
        naive = timezone.make_naive(timezone.now() - dt.timedelta(minutes=10))
        self.assertIn(">10 min ago<", render("{{ t|reltime }}", t=naive))


class DurationTokensCostTests(SimpleTestCase):
    def test_duration_is_human(self):
        cases = {
            0.85: "850 ms",
            1.8: "1.8 s",
            0.0004: "<1 ms",
            42: "42 s",
            192: "3 min 12 s",
            180: "3 min",
            7500: "2 h 5 min",
            3 * 86400 + 4 * 3600: "3 d 4 h",
            dt.timedelta(seconds=1.8): "1.8 s",
            Decimal("0.25"): "250 ms",
            None: "—",
        }
        for value, expected in cases.items():
            with self.subTest(value=value):
                self.assertEqual(lg.duration(value), expected)
        self.assertEqual(render("{{ s|duration }}", s=192), "3 min 12 s")

    def test_duration_edges_round_up_to_the_next_unit(self):
        self.assertEqual(lg.duration(0.9996), "1.0 s")
        self.assertEqual(lg.duration(59.7), "1 min")
        self.assertEqual(lg.duration(3599.7), "1 h")

    def test_tokens_have_thousands_separators(self):
        self.assertEqual(render("{{ n|tokens }}", n=12345), "12,345")
        self.assertEqual(lg.tokens(0), "0")
        self.assertEqual(lg.tokens("1234567"), "1,234,567")
        self.assertEqual(lg.tokens(None), "—")

    def test_cost_has_a_currency(self):
        self.assertEqual(render("{{ c|cost }}", c=Decimal("0.0123")), "$0.0123")
        self.assertEqual(lg.cost(12.5), "$12.50")
        self.assertEqual(lg.cost(1234.5), "$1,234.50")
        self.assertEqual(lg.cost(0), "$0.00")
        self.assertEqual(lg.cost("0.5"), "$0.50")
        self.assertEqual(lg.cost(0.00001), "<$0.0001")
        self.assertEqual(render('{{ c|cost:"EUR" }}', c=3), "€3.00")
        self.assertEqual(lg.cost(3, "chf"), "3.00 CHF")
        self.assertEqual(lg.cost(None), "—")

    @override_settings(LOOPGATE_CURRENCY="GBP")
    def test_cost_currency_defaults_to_the_setting(self):
        self.assertEqual(lg.cost(2), "£2.00")


class ShortIdTests(SimpleTestCase, AssertSafeMixin):
    def test_short_id_shows_eight_characters_and_copies_the_full_id(self):
        full = "8f2a91c4-d0b1-4e55-9a7e-3c1d2b4f5a60"
        html = render("{% short_id i %}", i=full)
        self.assertIn(">8f2a91c4</code>", html)
        self.assertIn(f'data-copy="{full}"', html)
        self.assertIn('class="id-text mono"', html)
        self.assertIn('type="button"', html)

    def test_short_id_as_a_link(self):
        html = render('{% short_id i href="/executions/8f2a91c4/" %}', i="8f2a91c4-d0b1")
        self.assertIn('<a class="id-text mono" href="/executions/8f2a91c4/"', html)

    def test_short_id_escapes(self):
        html = render("{% short_id i length=200 %}", i=HOSTILE)
        self.assertNoLiveMarkup(html)


class TokenMeterTests(SimpleTestCase):
    def test_levels(self):
        self.assertIn("meter-ok", render("{% token_meter 4000 20000 %}"))
        self.assertIn("meter-warn", render("{% token_meter 17000 20000 %}"))
        self.assertIn("meter-over", render("{% token_meter 20000 20000 %}"))
        self.assertIn("17,000 / 20,000", render("{% token_meter 17000 20000 %}"))
        self.assertIn("width: 100.0%", render("{% token_meter 30000 20000 %}"))

    def test_without_a_budget_only_the_count(self):
        html = render("{% token_meter 1234 None %}")
        self.assertNotIn('class="meter ', html)
        self.assertIn("1,234 tokens", html)


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
        self.assertLessEqual(html.count("<details"), lg.MAX_DEPTH)

    def test_long_strings_are_truncated_with_show_all(self):
        text = "word " * 100
        html = render("{% json_view v %}", v={"note": text})
        self.assertIn("show all (500 characters)", html)
        self.assertIn(text[: lg.MAX_STRING] + "…", html)
        self.assertIn(f'<div class="jv-full jv-str">{text}</div>', html)
        self.assertNotIn("show all", render("{% json_view v %}", v="x" * 300))

    def test_huge_lists_are_counted_not_all_rendered(self):
        html = render("{% json_view v %}", v=list(range(lg.MAX_ITEMS + 7)))
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
        from django.utils.safestring import mark_safe

        hostile = mark_safe(HOSTILE)
        self.assertNoLiveMarkup(render("{% json_view v %}", v={hostile: hostile, "m": [{"type": "human", "content": hostile}]}))
        self.assertNoLiveMarkup(render("{% diff_view d %}", d=[{"op": "add", "path": hostile, "after": hostile}]))
        self.assertNoLiveMarkup(render("{% short_id i length=200 %}", i=hostile))
        self.assertNoLiveMarkup(render("{% status_badge s %}", s=hostile))
        for name in ("tokens", "cost", "duration", "status_label", "diff_summary", "reltime"):
            with self.subTest(filter=name):
                self.assertNotIn("<script", render("{{ v|%s }}" % name, v=hostile))


class DiffViewTests(SimpleTestCase, AssertSafeMixin):
    DIFF = [
        {"op": "add", "path": "reports[1]", "after": {"title": "Q3"}},
        {"op": "remove", "path": "draft", "before": "old text"},
        {"op": "change", "path": "messages[3].content", "before": "a", "after": "b"},
    ]

    def test_added_removed_changed(self):
        html = render("{% diff_view d %}", d=self.DIFF)
        self.assertIn('<li class="diff-row diff-add"><span class="diff-sign" aria-hidden="true">+</span>', html)
        self.assertIn('<li class="diff-row diff-remove"><span class="diff-sign" aria-hidden="true">−</span>', html)
        self.assertIn('<code class="diff-path">reports[1]</code>', html)
        self.assertIn('<code class="diff-path">messages[3].content</code>', html)
        self.assertRegex(html, r'diff-before">.*?>a</span>.*?→.*?diff-after">.*?>b</span>')
        self.assertIn('<span class="sr-only">added </span>', html)

    def test_empty_and_malformed(self):
        self.assertIn("No changes.", render("{% diff_view d %}", d=[]))
        self.assertIn("No changes.", render("{% diff_view d %}", d=None))
        self.assertIn("diff-other", render("{% diff_view d %}", d=[{"op": "weird"}]))

    def test_summary(self):
        self.assertEqual(render("{{ d|diff_summary }}", d=self.DIFF), "+1 added, 1 changed, −1 removed")
        self.assertEqual(lg.diff_summary([]), "no changes")

    def test_hostile_paths_and_values_are_escaped(self):
        html = render(
            "{% diff_view d %}",
            d=[
                {"op": "add", "path": HOSTILE, "after": HOSTILE},
                {"op": "remove", "path": HOSTILE, "before": {HOSTILE: HOSTILE}},
                {"op": "change", "path": HOSTILE, "before": HOSTILE, "after": [HOSTILE]},
                {"op": HOSTILE, "path": HOSTILE},
            ],
        )
        self.assertNoLiveMarkup(html)
