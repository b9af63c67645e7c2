"""The architecture holds: apps in layers (import-linter's contract, ``.importlinter``) and one owner
of an execution's status (``orchestrator/services.py``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from django.test import TestCase

from orchestrator.models import Execution
from orchestrator.models.execution import StatusWriteRefused, owning_status

ROOT = Path(__file__).resolve().parents[1]
APPS = ("orchestrator", "approvals", "traces", "ops", "agent_api", "slack_approvals", "advisor")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300)


def test_the_layers_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_core_module_importing_a_feature_app_breaks_the_contract(tmp_path: Path) -> None:
    """The scratch change CI would see: the runner imports the approvals app again."""
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    runner = tmp_path / "orchestrator" / "runner.py"
    runner.write_text(runner.read_text() + "\n\nfrom approvals import services as _approvals  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "orchestrator.runner -> approvals.services" in result.stdout


def test_only_the_execution_services_own_the_status() -> None:
    """Only orchestrator/services.py may open the status guard; every other module goes through it."""
    owners = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            if "owning_status" in path.read_text():
                owners.append(str(path.relative_to(ROOT)))
    assert sorted(owners) == ["orchestrator/models/execution.py", "orchestrator/services.py"]


class StatusGuardTests(TestCase):
    def test_a_status_written_outside_the_owner_is_refused_and_changes_nothing(self) -> None:
        execution = Execution.objects.create(graph_name="seed")  # a new execution starts queued: allowed
        with self.assertRaises(StatusWriteRefused):
            Execution.objects.filter(id=execution.id).update(status=Execution.Status.SUCCEEDED)
        execution.status = Execution.Status.CANCELLED
        with self.assertRaises(StatusWriteRefused):
            execution.save()
        with self.assertRaises(StatusWriteRefused):
            Execution.objects.bulk_update([execution], ["status"])
        with self.assertRaises(StatusWriteRefused):
            Execution.objects.create(graph_name="seed", status=Execution.Status.RUNNING)
        self.assertEqual(Execution.objects.get(id=execution.id).status, Execution.Status.QUEUED)
        self.assertEqual(Execution.objects.count(), 1)

    def test_other_fields_and_the_owner_may_write(self) -> None:
        execution = Execution.objects.create(graph_name="seed")
        execution.step_count = 3
        execution.save()  # the status did not change
        Execution.objects.filter(id=execution.id).update(tokens_used=5)
        with owning_status():
            Execution.objects.filter(id=execution.id).update(status=Execution.Status.RUNNING)
        execution.refresh_from_db()
        self.assertEqual((execution.status, execution.step_count, execution.tokens_used), ("running", 3, 5))
