"""Start an execution from the command line, and optionally follow it step by step."""

from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from orchestrator import services
from orchestrator.errors import LoopgateError
from orchestrator.models import Execution
from traces.models import Step


class Command(BaseCommand):
    help = "Start an execution of a registered graph; with --follow, print each step as it happens."
    # A broken graph entry must not stop this command (`manage.py check` reports it).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("graph", help="The graph's registered name (see list_graphs).")
        parser.add_argument("--input", default=None, help="The input as a JSON object (default: the graph's example).")
        parser.add_argument("--follow", action="store_true", help="Print every step and the outcome.")
        parser.add_argument("--budget", type=int, default=None, help="Token budget for this execution.")
        parser.add_argument("--recursion-limit", type=int, default=None, help="Step limit for this execution.")
        parser.add_argument("--timeout", type=float, default=3600, help="Stop following after this many seconds.")

    def handle(self, *args: Any, **opts: Any) -> None:
        from orchestrator import registry

        try:
            entry = registry.get_graph(opts["graph"])
            data = entry.example_input if opts["input"] is None else json.loads(opts["input"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--input is not valid JSON: {exc}") from None
        except LoopgateError as exc:
            raise CommandError(str(exc)) from None
        if settings.EMBEDDED and opts["follow"]:
            # The in-memory broker only reaches a worker in this process. Without
            # --follow this process ends at once, so it starts none (a worker that
            # claimed the run and died with us would hold it until its lease ran out).
            from orchestrator.embedded import start_embedded_worker

            start_embedded_worker(threads=1)
        try:
            execution = services.execution_start(
                graph_name=entry.name, input=data, user=None, token_budget=opts["budget"],
                recursion_limit=opts["recursion_limit"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        except LoopgateError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Started {entry.name}@{entry.version} as execution {execution.id}")
        if not opts["follow"]:
            if settings.EMBEDDED:
                self.stdout.write("Embedded mode: the server's worker picks it up when it runs (scripts/run).")
            return
        self._follow(execution, opts["timeout"])

    def _follow(self, execution: Execution, timeout: float) -> None:
        seen = 0
        began = time.monotonic()
        while True:
            execution.refresh_from_db()
            for step in Step.objects.filter(execution=execution).order_by("step", "id")[seen:]:
                seen += 1
                elapsed = (step.finished_at - (execution.started_at or step.started_at)).total_seconds()
                self.stdout.write(
                    f"step {step.step:>3}  {step.node:<24} {elapsed:>8.2f} s  {step.tokens:>8,} tokens  "
                    f"({step.duration_ms} ms)"
                )
            if execution.status not in (Execution.Status.QUEUED, Execution.Status.RUNNING):
                break
            if time.monotonic() - began > timeout:
                raise CommandError(f"Still {execution.status} after {timeout:.0f} s; stopped following.")
            time.sleep(0.2)
        self._outcome(execution)

    def _outcome(self, execution: Execution) -> None:
        status = execution.status
        tokens = f"{execution.tokens_used:,} tokens"
        if status == Execution.Status.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(f"succeeded after {execution.step_count} steps, {tokens}"))
            self.stdout.write("final state:")
            self.stdout.write(json.dumps(execution.state, indent=2, ensure_ascii=False))
            return
        if status == Execution.Status.INTERRUPTED:
            pending = execution.approvals.filter(status="pending")
            self.stdout.write(self.style.WARNING(f"waiting for review: {pending.count()} pending approval(s)"))
            for approval in pending:
                names = ", ".join(a.get("name", "?") for a in approval.actions)
                self.stdout.write(f"  {approval.id}  node {approval.node}: {names}")
            return
        reason = (execution.error or {}).get("reason") or (execution.error or {}).get("message") or ""
        self.stdout.write(self.style.ERROR(f"{status}: {reason}".rstrip(": ")))
        if execution.state is not None:
            self.stdout.write("state where it stopped:")
            self.stdout.write(json.dumps(execution.state, indent=2, ensure_ascii=False))
        if status == Execution.Status.FAILED:
            raise CommandError(f"execution {execution.id} failed")
