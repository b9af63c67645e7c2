"""What keeps the advisor cheap and in its layer: bounded reads, and panels plugged in through the core's hooks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext

from advisor import panels, selectors
from orchestrator import hooks

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_graphs_findings_read_a_bounded_number_of_executions_and_queries(run: Callable) -> None:
    for _ in range(selectors.RECENT + 2):
        run("a_long_prompt", {"question": "May I?"})
    with CaptureQueriesContext(connection) as queries:
        advice = selectors.graph_advice(graph_name="a_long_prompt")
    assert advice.executions_seen == selectors.RECENT
    assert [f.key for f in advice.findings] == ["long_prompt:brief_writer"]  # one per key, not one per run
    # The executions, at most four for all of them together (here three: no tool call before an
    # interrupt), the dismissals: as many for five executions as for one.
    assert len(queries) <= 1 + 4 + 1


def test_the_panels_are_registered_with_the_core_for_both_pages() -> None:
    assert panels.graph_panel in hooks.page_panels("graph_card")
    assert panels.execution_panel in hooks.page_panels("execution")
    with pytest.raises(ImproperlyConfigured):
        hooks.register_page_panel("nowhere", panels.graph_panel)
