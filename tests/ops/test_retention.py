"""Retention on real runs: old checkpoints go, every approval, fork and audit link still opens."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from approvals.models import Approval
from orchestrator.models import AuditEntry
from approvals.services import approval_decide
from ops.retention import retention_apply
from orchestrator import services
from orchestrator.models import Execution
from orchestrator.models.checkpoints import Checkpoint as CheckpointRow
from tests.factories import make_role_users
from tests.ops.test_health_metrics import samples, value
from tests.services import wait_for
from traces import services as traces_services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
Status = Execution.Status


def checkpoints(execution: Execution) -> set[str]:
    return set(CheckpointRow.objects.filter(thread_id=str(execution.id)).values_list("checkpoint_id", flat=True))


def done(*executions: Execution) -> bool:
    return not Execution.objects.filter(id__in=[e.id for e in executions]).exclude(
        status__in=Execution.FINISHED).exists()


@pytest.fixture
def worker(worker):  # type: ignore[no-untyped-def]
    return worker("retention")


class RetentionTests:
    def test_pruning_keeps_what_approvals_forks_and_audit_point_at_and_every_link_opens(self, worker) -> None:  # type: ignore[no-untyped-def]
        users = make_role_users()
        counter = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 6}, user=None)
        plain = services.execution_start(graph_name="t_plain", input={}, user=None)
        wait_for(lambda: Approval.objects.filter(execution=plain).exists(), what="the approval")
        approval = Approval.objects.get(execution=plain)
        approval_decide(approval_id=approval.id, user=users["reviewer"], decisions=[{"type": "approve"}])
        wait_for(lambda: done(counter, plain), what="both executions")
        history = sorted(checkpoints(counter))
        fork_point = history[3]
        fork = traces_services.execution_fork(execution_id=counter.id, user=users["operator"],
                                              checkpoint_id=fork_point, values={"target": 7})
        wait_for(lambda: done(fork), what="the fork")
        before = {e.id: checkpoints(e) for e in (counter, plain, fork)}
        from traces.state import state_at

        at_fork_point = state_at(execution=counter, checkpoint_id=fork_point).values
        at_approval = state_at(execution=plain, checkpoint_id=approval.checkpoint_id).values
        assert len(before[counter.id]) >= 7

        with override_settings(LOOPGATE_RETENTION_KEEP_CHECKPOINTS={"*": 1}):
            result = retention_apply()

        after = {e.id: checkpoints(e) for e in (counter, plain, fork)}
        latest = {eid: max(ids) for eid, ids in before.items()}
        # The counter keeps its newest checkpoint and the one its fork was made from; the rest went.
        assert after[counter.id] == {latest[counter.id], fork_point}
        # The approval's checkpoint stays.
        assert approval.checkpoint_id in after[plain.id] and latest[plain.id] in after[plain.id]
        assert fork_point in after[fork.id] and latest[fork.id] in after[fork.id]
        removed = sum(len(before[e]) - len(after[e]) for e in before)
        assert removed > 0 and result.checkpoints == removed and result.executions == 0
        line = AuditEntry.objects.get(kind="retention")
        assert line.detail["checkpoints"] == removed

        client = Client()
        client.force_login(users["admin"])
        state = reverse("traces:state", args=[counter.id])
        pages = [
            reverse("approvals:detail", args=[approval.id]),
            f"{reverse('traces:state', args=[plain.id])}?checkpoint={approval.checkpoint_id}",
            f"{state}?checkpoint={fork_point}",
            state,
            reverse("traces:execution", args=[counter.id]),
            reverse("traces:execution", args=[fork.id]),
            reverse("traces:lineage", args=[fork.id]),
            f"{reverse('traces:compare', args=[fork.id])}?with={counter.id}",
            reverse("approvals:audit"),
        ]
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, (page, response.status_code)
        # The states still load: the kept checkpoints kept their blobs.
        assert state_at(execution=counter, checkpoint_id=fork_point).values == at_fork_point
        assert state_at(execution=plain, checkpoint_id=approval.checkpoint_id).values == at_approval
        assert state_at(execution=counter).values["n"] == 6

        found = samples(client.get("/metrics").content.decode())
        assert value(found, "loopgate_retention_removed_rows_total", kind="checkpoints") == removed

        # Applied again, nothing more to remove, and no second audit line.
        with override_settings(LOOPGATE_RETENTION_KEEP_CHECKPOINTS={"*": 1}):
            again = retention_apply()
        assert (again.executions, again.checkpoints) == (0, 0)
        assert AuditEntry.objects.filter(kind="retention").count() == 1

    def test_old_finished_executions_are_deleted_unless_a_fork_still_starts_from_them(self, worker) -> None:  # type: ignore[no-untyped-def]
        users = make_role_users()
        parent = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 2}, user=None)
        lone = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 2}, user=None)
        recent = services.execution_start(graph_name="t_counter", input={"n": 0, "target": 2}, user=None)
        wait_for(lambda: done(parent, lone, recent), what="three executions")
        fork = traces_services.execution_fork(execution_id=parent.id, user=users["operator"],
                                              checkpoint_id=max(checkpoints(parent)), values={"target": 3})
        wait_for(lambda: done(fork), what="the fork")
        long_ago = timezone.now() - datetime.timedelta(days=40)
        Execution.objects.filter(id__in=[parent.id, lone.id]).update(finished_at=long_ago)

        with override_settings(LOOPGATE_RETENTION_DAYS={"t_counter": 30}):
            preview = retention_apply(dry_run=True)
            assert preview.executions == 1 and Execution.objects.filter(id=lone.id).exists()
            result = retention_apply()

        assert result.executions == 1
        assert not Execution.objects.filter(id=lone.id).exists()
        assert not checkpoints(lone), "its checkpoints went with it"
        assert set(Execution.objects.filter(id__in=[parent.id, recent.id, fork.id]).values_list("id", flat=True)) == {
            parent.id, recent.id, fork.id}
        assert checkpoints(parent)
        assert AuditEntry.objects.get(kind="retention").detail["by_graph"]["t_counter"]["executions"] == 1
