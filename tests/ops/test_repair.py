"""Repairing stuck executions from the command line, on real workers and the real database."""

from __future__ import annotations

import collections
import io
import json
import time

import pytest
from django.core.management import CommandError, call_command

from approvals.models import Approval
from orchestrator.models import AuditEntry
from orchestrator import services
from orchestrator.models import Execution
from tests.factories import make_role_users
from tests.services import start_worker, wait_for
from traces.models import Step

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Status = Execution.Status


def repair(*args: str) -> str:
    out = io.StringIO()
    call_command("repair_execution", *args, stdout=out)
    return out.getvalue()




class RepairTests:
    def test_a_dead_workers_execution_is_diagnosed_and_released_to_another_worker(self, procs, runlog, settings) -> None:  # type: ignore[no-untyped-def]
        users = make_role_users()
        env = {"LOOPGATE_LEASE_SECONDS": "6"}
        settings.LOOPGATE_LEASE_SECONDS = 6
        doomed = start_worker("doomed", pool="solo", **env)
        procs.append(doomed)
        execution = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 6, "sleep": 1.0},
                                             user=None)
        wait_for(lambda: Step.objects.filter(execution=execution, step__gte=2).exists(), timeout=60, what="steps")
        doomed.kill()  # SIGKILL mid-step; no beat runs, so nothing else would move it
        wait_for(lambda: Execution.objects.filter(id=execution.id, lease_expires_at__lt=time_now()).exists(),
                 timeout=30, what="the lease to lapse")

        assert str(execution.id) in repair("--stuck")
        shown = json.loads(repair(str(execution.id), "--json"))
        assert shown["status"] == "running" and "lapsed" in shown["why"]
        assert shown["lease_owner"].startswith(doomed_host())
        assert shown["last_heartbeat_at"] and shown["last_step"]["step"] >= 2
        assert shown["last_checkpoint"]["checkpoint_id"]
        assert shown["actions"] == ["release", "fail", "cancel"]
        text = repair(str(execution.id))
        assert "why:" in text and "--release" in text

        with pytest.raises(CommandError, match="Say why"):
            repair(str(execution.id), "--release", "--as", "alice")
        with pytest.raises(CommandError, match="Only admins"):
            repair(str(execution.id), "--release", "--reason", "x", "--as", "otto")
        assert Execution.objects.get(id=execution.id).status == Status.RUNNING  # unchanged

        rescuer = start_worker("rescuer", pool="solo", **env)
        procs.append(rescuer)
        assert "now queued" in repair(str(execution.id), "--release", "--reason", "node drained", "--as", "alice")
        wait_for(lambda: Execution.objects.filter(id=execution.id, status__in=Execution.FINISHED).exists(),
                 timeout=60, what="the released execution")
        execution.refresh_from_db()
        assert execution.status == Status.SUCCEEDED and execution.state["n"] == 6
        line = AuditEntry.objects.get(kind="repair", execution_id=execution.id)
        assert (line.actor, line.outcome, line.comment) == (users["admin"], "lease released", "node drained")
        assert line.detail["lease_owner"] == shown["lease_owner"]
        counts = collections.Counter(tuple(line.split(" ")[:3]) for line in runlog.read_text().splitlines())
        completed = {(str(execution.id), "work", str(s)) for s in range(1, shown["last_step"]["step"] + 1)}
        assert all(counts[key] == 1 for key in completed), counts

    def test_a_queued_execution_whose_message_was_lost_is_requeued(self, procs) -> None:  # type: ignore[no-untyped-def]
        make_role_users()
        procs.append(start_worker("w1"))
        # A row with no message behind it, as after a flushed broker.
        lost = Execution.objects.create(graph_name="t_counter", input={"n": 0, "target": 2})
        time.sleep(1)
        assert Execution.objects.get(id=lost.id).status == Status.QUEUED
        shown = json.loads(repair(str(lost.id), "--json"))
        assert "no worker took it" in shown["why"] and shown["actions"][0] == "requeue"
        repair(str(lost.id), "--requeue", "--reason", "broker flushed", "--as", "alice")
        wait_for(lambda: Execution.objects.filter(id=lost.id, status=Status.SUCCEEDED).exists(), what="the re-queued run")
        assert AuditEntry.objects.filter(kind="repair", execution_id=lost.id, outcome="re-queued").exists()
        with pytest.raises(CommandError, match="only a queued|Only a queued"):
            repair(str(lost.id), "--requeue", "--reason", "again")

    def test_a_waiting_execution_is_marked_failed_and_its_approvals_cancelled(self, procs) -> None:  # type: ignore[no-untyped-def]
        make_role_users()
        procs.append(start_worker("w1"))
        waiting = services.execution_start(graph_name="t_plain", input={}, user=None)
        wait_for(lambda: Approval.objects.filter(execution=waiting).exists(), what="the approval")
        shown = json.loads(repair(str(waiting.id), "--json"))
        assert len(shown["pending_approvals"]) == 1 and "Waiting for people" in shown["why"]
        repair(str(waiting.id), "--fail", "--reason", "the customer withdrew", "--as", "alice")
        waiting.refresh_from_db()
        assert waiting.status == Status.FAILED and waiting.finished_at is not None
        assert "the customer withdrew" in waiting.error["reason"] and "alice" in waiting.error["reason"]
        assert Approval.objects.get(execution=waiting).status == Approval.Status.CANCELLED
        assert AuditEntry.objects.filter(kind="repair", execution_id=waiting.id, outcome="marked failed").exists()
        with pytest.raises(CommandError, match="already ended"):
            repair(str(waiting.id), "--cancel", "--reason", "twice")

    def test_cancel_and_bad_input(self) -> None:
        make_role_users()
        queued = Execution.objects.create(graph_name="t_counter", input={})
        repair(str(queued.id), "--cancel", "--reason", "not needed", "--as", "alice")
        queued.refresh_from_db()
        assert queued.status == Status.CANCELLED
        assert AuditEntry.objects.filter(kind="repair", execution_id=queued.id, outcome="cancelled").exists()
        with pytest.raises(CommandError, match="not an execution id"):
            repair("nope")
        with pytest.raises(CommandError, match="No execution"):
            repair("00000000-0000-0000-0000-000000000000")
        with pytest.raises(CommandError, match="No user"):
            repair(str(queued.id), "--fail", "--reason", "x", "--as", "ghost")


def time_now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


def doomed_host() -> str:
    import socket

    return socket.gethostname()


class RepairAdminTests:
    def test_the_admin_action_asks_for_a_reason_then_fails_the_execution_audited(self) -> None:
        from django.test import Client
        from django.urls import reverse

        users = make_role_users()
        users["admin"].is_staff = True
        users["admin"].save(update_fields=["is_staff"])
        queued = Execution.objects.create(graph_name="t_counter", input={})
        client = Client()
        client.force_login(users["admin"])
        url = reverse("admin:orchestrator_execution_changelist")
        assert client.get(url).status_code == 200
        asked = client.post(url, {"action": "mark_failed", "_selected_action": [str(queued.id)]})
        assert asked.status_code == 200 and b"Say why" in asked.content and b"no worker took it" in asked.content
        assert Execution.objects.get(id=queued.id).status == Status.QUEUED  # nothing yet
        empty = client.post(url, {"action": "mark_failed", "_selected_action": [str(queued.id)], "apply": "1",
                                  "reason": ""})
        assert empty.status_code == 200 and Execution.objects.get(id=queued.id).status == Status.QUEUED
        done = client.post(url, {"action": "mark_failed", "_selected_action": [str(queued.id)], "apply": "1",
                                 "reason": "duplicate request"})
        assert done.status_code == 302
        queued.refresh_from_db()
        assert queued.status == Status.FAILED and "duplicate request" in queued.error["reason"]
        assert AuditEntry.objects.filter(kind="repair", execution_id=queued.id, actor=users["admin"]).exists()
        page = client.get(reverse("admin:orchestrator_execution_change", args=[queued.id]))
        assert page.status_code == 200

    def test_a_staff_user_who_is_not_an_admin_cannot_repair(self) -> None:
        from django.contrib.auth.models import Permission
        from django.test import Client
        from django.urls import reverse

        users = make_role_users()
        operator = users["operator"]
        operator.is_staff = True
        operator.save(update_fields=["is_staff"])
        operator.user_permissions.add(Permission.objects.get(codename="view_execution"),
                                      Permission.objects.get(codename="change_execution"))
        queued = Execution.objects.create(graph_name="t_counter", input={})
        client = Client()
        client.force_login(operator)
        url = reverse("admin:orchestrator_execution_changelist")
        client.post(url, {"action": "mark_failed", "_selected_action": [str(queued.id)], "apply": "1",
                          "reason": "x"})
        assert Execution.objects.get(id=queued.id).status == Status.QUEUED
