"""The shared formatting tags and filters of ``{% load loopgate %}``: formats, and escaping of hostile text."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from types import SimpleNamespace

from pathlib import Path

from django.conf import settings
from django.template import TemplateSyntaxError
from django.template.loader import get_template
from django.test import SimpleTestCase, override_settings
from django.utils import timezone
from django.utils.safestring import mark_safe

from orchestrator.templatetags import loopgate as lg
from tests.escaping import HOSTILE, AssertSafeMixin, render_template


def render(source: str, **context) -> str:
    return render_template(source, "loopgate", **context)


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


class MarkedSafeTests(SimpleTestCase, AssertSafeMixin):
    def test_data_marked_safe_upstream_is_still_text(self):
        hostile = mark_safe(HOSTILE)
        self.assertNoLiveMarkup(render("{% short_id i length=200 %}", i=hostile))
        self.assertNoLiveMarkup(render("{% status_badge s %}", s=hostile))
        for name in ("tokens", "cost", "duration", "status_label", "reltime"):
            with self.subTest(filter=name):
                self.assertNotIn("<script", render("{{ v|%s }}" % name, v=hostile))


class TemplateLibrariesTests(SimpleTestCase):
    def test_every_template_loads_the_libraries_it_uses(self):
        """A tag or filter of a library the template does not load fails at compile time."""
        root = Path(settings.BASE_DIR) / "templates"
        names = sorted(str(path.relative_to(root)) for path in root.rglob("*.html"))
        self.assertGreater(len(names), 20)
        for name in names:
            with self.subTest(template=name):
                get_template(name)

    def test_no_table_header_cell_is_hidden_whole(self):
        """A header cell kept for screen readers hides its text, not itself: a hidden ``<th>`` leaves its
        column's header unshaded (the tokens table's Revoke column)."""
        root = Path(settings.BASE_DIR) / "templates"
        for path in root.rglob("*.html"):
            with self.subTest(template=str(path.relative_to(root))):
                self.assertNotRegex(path.read_text(), r'<th[^>]*class="[^"]*\bsr-only\b')

    def test_the_viewer_is_not_in_the_formatting_library(self):
        with self.assertRaises(TemplateSyntaxError):
            render("{% json_view v %}", v={})
        with self.assertRaises(TemplateSyntaxError):
            render("{{ d|diff_summary }}", d=[])


class DocstringTests(SimpleTestCase, AssertSafeMixin):
    """The Graphs page showed docstrings as raw reStructuredText (issue 14)."""

    def test_paragraphs_lists_and_literals(self):
        doc = ("Watch an account's costs and shut down an idle\ncluster after the owner approves.\n\n"
               "Input: ``account`` (required) and\n``approval_timeout_seconds``.\n\n"
               "- monitor: finds the spike\n- diagnose: finds the idle cluster,\n  its owner and manager\n\n"
               "1. one\n2. two")
        html = render("{{ d|docstring }}", d=doc)
        self.assertEqual(html, (
            "<p>Watch an account&#x27;s costs and shut down an idle cluster after the owner approves.</p>"
            "<p>Input: <code>account</code> (required) and <code>approval_timeout_seconds</code>.</p>"
            "<ul><li>monitor: finds the spike</li><li>diagnose: finds the idle cluster, its owner and manager</li></ul>"
            "<ol><li>one</li><li>two</li></ol>"))

    def test_hostile_text_stays_text(self):
        for hostile in (HOSTILE, f"``{HOSTILE}``", f"- {HOSTILE}\n- ``{HOSTILE}``"):
            with self.subTest(hostile=hostile):
                self.assertNoLiveMarkup(render("{{ d|docstring }}", d=hostile))
                self.assertNoLiveMarkup(render("{{ d|docstring }}", d=mark_safe(hostile)))
