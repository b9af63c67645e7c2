"""Show why an execution is stuck, and release, re-queue, fail or cancel it (audited).

    manage.py repair_execution --stuck
    manage.py repair_execution ID [--json]
    manage.py repair_execution ID --release|--requeue|--fail|--cancel --reason "..." [--as ADMIN]
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ops import repair
from orchestrator.errors import LoopgateError
from orchestrator.models import Execution

ACTIONS = {
    "release": repair.execution_release_lease,
    "requeue": repair.execution_requeue,
    "fail": repair.execution_fail,
    "cancel": repair.execution_cancel_stuck,
}


class Command(BaseCommand):
    help = "Show why an execution is stuck (lease, heartbeat, last step and checkpoint, pending approvals), " \
           "or repair it: --release its lease, --requeue, --fail or --cancel it, with a --reason. Audited."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", nargs="?", help="The execution's id (a UUID).")
        parser.add_argument("--stuck", action="store_true", help="List executions that look stuck.")
        group = parser.add_mutually_exclusive_group()
        for action in ACTIONS:
            group.add_argument(f"--{action}", dest="action", action="store_const", const=action)
        parser.add_argument("--reason", default="", help="Why; kept on the execution and in the audit log.")
        parser.add_argument("--as", dest="username", default="", help="The admin to record in the audit log.")
        parser.add_argument("--json", action="store_true", help="The diagnosis as JSON.")

    def handle(self, *args: Any, execution_id: str | None, stuck: bool, action: str | None, reason: str,
               username: str, **options: Any) -> None:
        if stuck:
            self._list_stuck()
            return
        if not execution_id:
            raise CommandError("Name an execution id, or use --stuck to list the stuck ones.")
        try:
            uuid = UUID(execution_id)
        except ValueError:
            raise CommandError(f"{execution_id!r} is not an execution id (a UUID).") from None
        if not Execution.objects.filter(id=uuid).exists():
            raise CommandError(f"No execution {uuid}.")
        if action is None:
            self._show(uuid, as_json=options["json"])
            return
        user = None
        if username:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"No user {username!r}.")
        try:
            execution = ACTIONS[action](execution_id=uuid, user=user, reason=reason)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except LoopgateError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{execution.id}: {action} done; now {execution.get_status_display()}.")

    def _show(self, execution_id: UUID, *, as_json: bool) -> None:
        diagnosis = repair.execution_diagnose(execution_id=execution_id)
        data = diagnosis.as_dict()
        if as_json:
            self.stdout.write(json_dumps(data))
            return
        self.stdout.write(f"{data['execution_id']}  {data['graph']}  {data['status']}")
        self.stdout.write(f"why: {data['why']}")
        for key in ("lease_owner", "lease_expires_at", "last_heartbeat_at", "updated_at", "cancel_requested",
                    "last_step", "last_checkpoint"):
            self.stdout.write(f"  {key}: {data[key] if data[key] not in (None, '') else '-'}")
        self.stdout.write(f"  pending_approvals: {len(data['pending_approvals'])}")
        for approval in data["pending_approvals"]:
            self.stdout.write(f"    {approval['id']} at {approval['node']} since {approval['created_at']}")
        if data["actions"]:
            self.stdout.write("can: " + ", ".join(f"--{a}" for a in data["actions"]) + ' --reason "..."')

    def _list_stuck(self) -> None:
        rows = repair.executions_stuck()
        if not rows:
            self.stdout.write("No execution looks stuck.")
            return
        for execution in rows:
            self.stdout.write(f"{execution.id}  {execution.graph_name}  {execution.status}  "
                              f"lease={execution.lease_owner or '-'}  updated={execution.updated_at:%Y-%m-%d %H:%M:%S}")


def json_dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
