"""List the registered graphs with their versions, and any broken entry with its reason."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "List the registered graphs (built-in examples and LOOPGATE_GRAPHS)."
    # A broken graph entry must not stop this command (`manage.py check` reports it).
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        from orchestrator import registry

        for entry in registry.all_entries():
            if entry.error:
                self.stdout.write(self.style.ERROR(f"  {entry.name:<16} broken: {entry.error}"))
            else:
                self.stdout.write(f"  {entry.name:<16} @{entry.version}  {len(entry.nodes)} nodes  ({entry.spec})")
