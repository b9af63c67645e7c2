"""Serve the dashboard with Daphne; in embedded mode also run the Celery worker in-process."""

from __future__ import annotations

import os
import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _port_free(host: str, port: int) -> bool:
    """Whether this host and port can be bound now (Daphne would fail later, after saying it serves)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Serve Loopgate (HTTP and WebSockets). Without REDIS_URL, an embedded Celery worker runs in-process."
    # A broken graph entry is a check error, but must never stop the web
    # process: the Graphs page shows it instead.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
        parser.add_argument("--no-worker", action="store_true", help="Do not start the embedded worker.")

    def handle(self, *args: Any, host: str, port: int, no_worker: bool, **options: Any) -> None:
        from daphne.cli import CommandLineInterface

        if not _port_free(host, port):
            raise CommandError(f"Port {port} on {host} is taken by another program: stop it, or serve on another "
                               f"port (PORT={port + 1} scripts/run, or manage.py serve --port {port + 1}).")
        if settings.EMBEDDED and not no_worker:
            from orchestrator.embedded import start_embedded_worker

            start_embedded_worker()
            self.stdout.write("Embedded mode: SQLite and an in-process Celery worker.")
        self.stdout.write(self.style.SUCCESS(f"Loopgate is serving on http://{host}:{port}/"))
        CommandLineInterface().run(["--bind", host, "--port", str(port), "orchestrator.asgi:application"])
