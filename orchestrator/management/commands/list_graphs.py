"""List the registered graphs with their versions, and any broken entry with its reason."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from orchestrator import registry


class Command(BaseCommand):
    help = "List the registered graphs (built-in examples and LOOPGATE_GRAPHS)."
    # A broken graph entry must not stop this command (`manage.py check` reports it). Nodes are
    # counted as the Graphs page counts them (the graph's own, without __start__ and __end__).
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        for entry in registry.all_entries():
            if entry.error:
                self.stdout.write(self.style.ERROR(f"  {entry.name:<16} broken: {entry.error}"))
            else:
                self.stdout.write(f"  {entry.name:<16} @{entry.version}  {entry.node_count} node{'' if entry.node_count == 1 else 's'}  ({entry.spec})")
