"""System checks: ``manage.py check`` (and runserver, migrate) names every graph
entry that cannot be loaded, so a typo in LOOPGATE_GRAPHS is found at deploy
time rather than when someone presses Start.

Warnings, not errors: the deployment's graphs are not the database's, so a
broken entry never stops ``migrate``, ``createsuperuser`` or any other command.
The Graphs page and the server log show it too. Silence one with
``SILENCED_SYSTEM_CHECKS = ["loopgate.W001"]``.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Warning

BROKEN_GRAPH = "loopgate.W001"
BAD_GRAPHS_SETTING = "loopgate.W002"


def check_graphs(app_configs: list[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    # `manage.py check <app>` limits checks to those apps; the registry belongs to this one.
    if app_configs is not None and not any(config.name == "orchestrator" for config in app_configs):
        return []
    from orchestrator import registry  # imported here: checks are registered while apps load

    messages: list[CheckMessage] = []
    problem = registry.config_error()
    if problem:
        messages.append(
            Warning(
                f"LOOPGATE_GRAPHS cannot be read: {problem}",
                hint='Give the path of a JSON file, or the JSON itself: {"graphs": {"name": "path/to/file.py:attr"}}.',
                id=BAD_GRAPHS_SETTING,
            )
        )
    for entry in registry.all_entries():
        if entry.error is not None:
            messages.append(
                Warning(
                    f"Graph {entry.name!r} ({entry.spec}) cannot be loaded: {entry.error}",
                    hint="Fix the entry in LOOPGATE_GRAPHS or the module it names; until then it cannot be started.",
                    id=BROKEN_GRAPH,
                )
            )
    return messages
