"""State diffs on the trace pages, ``{% load state_diff %}``: the entries, their summary, and escaping."""

from __future__ import annotations

from django.test import SimpleTestCase
from django.utils.safestring import mark_safe

from tests.escaping import HOSTILE, AssertSafeMixin, render_template
from traces.diff import state_diff as state_diff_of
from traces.diff import summarize
from traces.templatetags import state_diff


def render(source: str, **context) -> str:
    return render_template(source, "state_diff", **context)


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
        self.assertEqual(state_diff.diff_summary([]), "no changes")

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

    def test_data_marked_safe_upstream_is_still_text(self):
        hostile = mark_safe(HOSTILE)
        self.assertNoLiveMarkup(render("{% diff_view d %}", d=[{"op": "add", "path": hostile, "after": hostile}]))
        self.assertNotIn("<script", render("{{ v|diff_summary }}", v=hostile))
        self.assertNotIn("<script", render("{{ v|diff_summary }}", v=[{"op": hostile}]))



class SummarizeTests(SimpleTestCase):
    def test_the_filter_is_the_diff_modules_summary(self):
        diff = state_diff_of({"a": 1, "b": [1], "gone": 0}, {"a": 2, "b": [1, 2], "new": {}})
        self.assertEqual(summarize(diff), "+2 added, 1 changed, −1 removed")
        self.assertEqual(render("{{ d|diff_summary }}", d=diff), summarize(diff))

    def test_nothing_to_count(self):
        for value in ([], None, "text", [1, "x"], [{"op": "other"}]):
            with self.subTest(value=value):
                self.assertEqual(summarize(value), "no changes")
