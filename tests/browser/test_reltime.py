"""One rule for "N min ago": the server's words and loopgate.js's live refresh never disagree.

The page shows what the ``|reltime`` filter wrote, then loopgate.js rewrites it every 30 s; if the
two rules differ, a time changes its words when nothing but the refresh happened (150 s read
"2 min ago" from the server and "3 min ago" after the refresh). The real script, in Chromium, is
compared with the Python rule over every second of the first two hours and samples up to 30 days.
"""

from __future__ import annotations

import pytest

from orchestrator.templatetags.loopgate import relative_phrase

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DAY = 86_400
SECONDS = sorted({*range(0, 2 * 3600 + 1), *range(0, 2 * DAY, 7), *range(0, 30 * DAY, 101),
                  *(x + d for x in (45, 60, 90, 150, 3570, 5400, 9000, 84_600, 129_600) for d in (-0.5, 0.25, 0.5, 0.75))})


def test_the_live_refresh_uses_the_servers_rule_to_the_second(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login/")
    page.wait_for_function("window.loopgate && window.loopgate.relativePhrase")
    offsets = [s for s in SECONDS if s < 30 * DAY] + [-s for s in SECONDS if 0 < s < 30 * DAY]
    for prefix in ("", "waiting"):
        in_js = page.evaluate(
            "([offsets, prefix]) => offsets.map((s) => window.loopgate.relativePhrase(s, prefix))", [offsets, prefix]
        )
        in_python = [relative_phrase(s, prefix) for s in offsets]
        differing = [(s, py, js) for s, py, js in zip(offsets, in_python, in_js) if py != js]
        assert differing == [], f"{len(differing)} offsets read differently, first: {differing[:5]}"
    assert relative_phrase(150) == "2 min ago"
    # From 30 days on the script keeps the server's date.
    assert page.evaluate("window.loopgate.relativePhrase(30 * 86400, '')") is None
