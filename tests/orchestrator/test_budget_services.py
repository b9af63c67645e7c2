"""Budget services against the database: where an execution's budget comes from, the daily
limit, the admins' changes and their log, and raising an over-budget execution's budget."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections
from django.test import TestCase, TransactionTestCase, override_settings
from django.utils import timezone

from orchestrator import budgets, registry, services
from orchestrator.budgets import DailyTokenLimitReached
from orchestrator.errors import InvalidState, PermissionDenied
from orchestrator.models import BudgetChange, BudgetDefault, Execution, GraphBudget
from tests.factories import fixture_execution, make_role_users

Status = Execution.Status


class BudgetTestCase(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        cls.users = make_role_users()

    def setUp(self) -> None:
        registry.reset()
        self.addCleanup(registry.reset)

    def start(self, role: str | None = "operator", **kwargs):  # type: ignore[no-untyped-def]
        user = self.users[role] if role else None
        with self.captureOnCommitCallbacks(execute=False):
            return services.execution_start(graph_name="seed", input={}, user=user, **kwargs)


@override_settings(LOOPGATE_DEFAULT_TOKEN_BUDGET=50_000)
class BudgetResolutionTests(BudgetTestCase):
    def test_without_any_budget_set_an_execution_gets_the_setting(self) -> None:
        self.assertEqual(self.start().token_budget, 50_000)

    def test_the_default_set_by_an_admin_replaces_the_setting(self) -> None:
        budgets.budget_set_default(user=self.users["admin"], token_budget=30_000)
        self.assertEqual(self.start().token_budget, 30_000)

    def test_the_graphs_budget_overrides_the_default(self) -> None:
        budgets.budget_set_default(user=self.users["admin"], token_budget=30_000)
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=8_000,
                                 daily_token_limit=None)
        self.assertEqual(self.start().token_budget, 8_000)
        self.assertEqual(self.start(token_budget=5_000).token_budget, 5_000)

    def test_an_operator_may_not_ask_for_more_than_the_graphs_budget(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=8_000,
                                 daily_token_limit=None)
        with self.assertRaises(ValidationError) as caught:
            self.start(token_budget=8_001)
        self.assertIn("At most 8,000 tokens", caught.exception.message_dict["token_budget"][0])
        self.assertIn("Only admins", caught.exception.message_dict["token_budget"][0])
        self.assertFalse(Execution.objects.exists())

    def test_an_operator_may_not_exceed_the_default_either_when_the_graph_has_none(self) -> None:
        with self.assertRaises(ValidationError):
            self.start(token_budget=50_001)
        self.assertEqual(self.start(token_budget=50_000).token_budget, 50_000)

    def test_an_admin_may_start_with_a_larger_budget(self) -> None:
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=8_000,
                                 daily_token_limit=None)
        self.assertEqual(self.start("admin", token_budget=1_000_000).token_budget, 1_000_000)

    def test_a_negative_budget_is_refused(self) -> None:
        with self.assertRaises(ValidationError):
            self.start(token_budget=-1)

    def test_an_execution_keeps_the_budget_it_started_with(self) -> None:
        execution = self.start()
        budgets.budget_set_default(user=self.users["admin"], token_budget=1_000)
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=500,
                                 daily_token_limit=None)
        execution.refresh_from_db()
        self.assertEqual(execution.token_budget, 50_000)


class DailyLimitTests(BudgetTestCase):
    def setUp(self) -> None:
        super().setUp()
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=None,
                                 daily_token_limit=10_000)

    def spent(self, tokens: int, *, days_ago: int = 0, graph: str = "seed") -> None:
        execution = fixture_execution(graph_name=graph, tokens_used=tokens, status=Status.SUCCEEDED)
        if days_ago:
            Execution.objects.filter(id=execution.id).update(
                created_at=timezone.now() - datetime.timedelta(days=days_ago))

    def test_below_the_limit_executions_start(self) -> None:
        self.spent(9_999)
        self.assertEqual(budgets.graph_tokens_today("seed"), 9_999)
        self.start()

    def test_at_the_limit_new_executions_are_refused_with_a_clear_message(self) -> None:
        self.spent(6_000)
        self.spent(4_000)
        with self.assertRaises(DailyTokenLimitReached) as caught:
            self.start("admin")
        self.assertEqual(
            caught.exception.message,
            "seed has used its daily token limit: 10,000 of 10,000 tokens today. New executions can start "
            "tomorrow, or an admin can raise the limit on the Budgets page.",
        )
        self.assertEqual(caught.exception.extra["tokens_today"], 10_000)
        self.assertEqual(Execution.objects.count(), 2)

    def test_yesterdays_tokens_and_other_graphs_do_not_count(self) -> None:
        self.spent(50_000, days_ago=1)
        self.spent(50_000, graph="other")
        self.assertEqual(budgets.graph_tokens_today("seed"), 0)
        self.start()
        # Today's tokens of this graph do count, and the limit still holds with the others around.
        self.spent(9_000)
        self.assertEqual(budgets.graph_tokens_today("seed"), 9_000)
        self.spent(1_000)
        with self.assertRaises(DailyTokenLimitReached) as caught:
            self.start()
        self.assertEqual(caught.exception.extra["tokens_today"], 10_000)

    def test_raising_the_limit_lets_executions_start_again(self) -> None:
        self.spent(10_000)
        budgets.graph_budget_set(user=self.users["admin"], graph_name="seed", token_budget=None,
                                 daily_token_limit=20_000)
        self.start()


@override_settings(LOOPGATE_DEFAULT_TOKEN_BUDGET=50_000)
class BudgetChangeTests(BudgetTestCase):
    def test_only_admins_change_budgets(self) -> None:
        for role in ("reviewer", "operator", "outsider"):
            with self.subTest(role=role):
                with self.assertRaises(PermissionDenied):
                    budgets.budget_set_default(user=self.users[role], token_budget=1)
                with self.assertRaises(PermissionDenied):
                    budgets.graph_budget_set(user=self.users[role], graph_name="seed", token_budget=1,
                                             daily_token_limit=None)
        self.assertFalse(BudgetDefault.objects.exists())
        self.assertFalse(GraphBudget.objects.exists())
        self.assertFalse(BudgetChange.objects.exists())

    def test_the_first_default_is_logged_against_the_setting_it_replaces(self) -> None:
        admin = self.users["admin"]
        budgets.budget_set_default(user=admin, token_budget=30_000)
        budgets.budget_set_default(user=admin, token_budget=30_000)  # unchanged: no line
        budgets.budget_set_default(user=admin, token_budget=40_000)
        changes = list(BudgetChange.objects.order_by("id").values_list("scope", "field", "old_value", "new_value",
                                                                        "username"))
        self.assertEqual(changes, [("default", "token_budget", 50_000, 30_000, "alice"),
                                   ("default", "token_budget", 30_000, 40_000, "alice")])
        self.assertEqual(budgets.default_token_budget(), 40_000)

    def test_graph_changes_log_one_line_per_changed_field(self) -> None:
        admin = self.users["admin"]
        budgets.graph_budget_set(user=admin, graph_name="seed", token_budget=8_000, daily_token_limit=None)
        budgets.graph_budget_set(user=admin, graph_name="seed", token_budget=8_000, daily_token_limit=90_000)
        budgets.graph_budget_set(user=admin, graph_name="seed", token_budget=None, daily_token_limit=None)
        changes = list(BudgetChange.objects.order_by("id").values_list("graph_name", "field", "old_value",
                                                                        "new_value"))
        self.assertEqual(changes, [("seed", "token_budget", None, 8_000),
                                   ("seed", "daily_token_limit", None, 90_000),
                                   ("seed", "token_budget", 8_000, None),
                                   ("seed", "daily_token_limit", 90_000, None)])
        row = GraphBudget.objects.get(graph_name="seed")
        self.assertEqual((row.token_budget, row.daily_token_limit, row.updated_by), (None, None, admin))

    def test_every_change_is_also_on_the_audit_page(self) -> None:
        from orchestrator.models import AuditEntry

        admin = self.users["admin"]
        budgets.budget_set_default(user=admin, token_budget=30_000)
        budgets.graph_budget_set(user=admin, graph_name="seed", token_budget=None, daily_token_limit=90_000)
        entries = list(AuditEntry.objects.filter(kind=AuditEntry.Kind.BUDGET).order_by("id")
                       .values_list("actor_name", "action", "graph_name", "comment", "detail"))
        self.assertEqual(entries, [
            ("alice", "default budget per execution", "", "50,000 → 30,000",
             {"scope": "default", "field": "token_budget", "old": 50_000, "new": 30_000}),
            ("alice", "daily token limit", "seed", "no limit → 90,000",
             {"scope": "graph", "field": "daily_token_limit", "old": None, "new": 90_000}),
        ])

    def test_bad_values_and_unknown_graphs_change_nothing(self) -> None:
        admin = self.users["admin"]
        with self.assertRaises(ValidationError):
            budgets.budget_set_default(user=admin, token_budget=-5)
        with self.assertRaises(ValidationError):
            budgets.graph_budget_set(user=admin, graph_name="seed", token_budget=10, daily_token_limit=-1)
        with self.assertRaises(ValidationError):
            budgets.graph_budget_set(user=admin, graph_name="nope", token_budget=10, daily_token_limit=None)
        self.assertFalse(BudgetChange.objects.exists())
        self.assertFalse(GraphBudget.objects.exists())


class ExecutionBudgetRaiseTests(BudgetTestCase):
    def over_budget(self, **fields):  # type: ignore[no-untyped-def]
        values = {"graph_name": "seed", "status": Status.BUDGET_EXCEEDED, "tokens_used": 10_000,
                  "token_budget": 10_000, "finished_at": timezone.now(),
                  "error": {"reason": "LLM call refused", "when": "before_call"}}
        values.update(fields)
        return fixture_execution(**values)

    def test_an_admin_raises_the_budget_and_the_execution_is_queued_to_resume(self) -> None:
        execution = self.over_budget()
        with self.captureOnCommitCallbacks(execute=False) as callbacks:
            raised = budgets.execution_budget_raise(execution_id=execution.id, user=self.users["admin"],
                                                    token_budget=15_000)
        self.assertEqual((raised.status, raised.token_budget, raised.error, raised.finished_at),
                         (Status.QUEUED, 15_000, None, None))
        queued = [c for c in callbacks if getattr(c, "func", None) is services._queue_advance]
        self.assertEqual([c.args for c in queued], [(str(execution.id),)])
        change = BudgetChange.objects.get()
        self.assertEqual((change.scope, change.execution_id, change.old_value, change.new_value, change.username),
                         ("execution", execution.id, 10_000, 15_000, "alice"))
        self.assertEqual(change.detail["stopped_by"]["when"], "before_call")
        from orchestrator.models import AuditEntry

        audit = AuditEntry.objects.get(kind=AuditEntry.Kind.BUDGET)
        self.assertEqual((audit.execution_id, audit.action, audit.comment),
                         (execution.id, "budget raised, resumed", "10,000 → 15,000"))

    def test_only_admins_may_raise_a_budget(self) -> None:
        execution = self.over_budget()
        for role in ("reviewer", "operator", "outsider"):
            with self.subTest(role=role), self.assertRaises(PermissionDenied):
                budgets.execution_budget_raise(execution_id=execution.id, user=self.users[role], token_budget=20_000)
        execution.refresh_from_db()
        self.assertEqual((execution.status, execution.token_budget), (Status.BUDGET_EXCEEDED, 10_000))

    def test_only_over_budget_executions_are_raised(self) -> None:
        execution = self.over_budget(status=Status.SUCCEEDED)
        with self.assertRaises(InvalidState):
            budgets.execution_budget_raise(execution_id=execution.id, user=self.users["admin"], token_budget=20_000)
        self.assertFalse(BudgetChange.objects.exists())

    def test_the_new_budget_must_exceed_the_tokens_used(self) -> None:
        execution = self.over_budget(tokens_used=10_400)
        with self.assertRaises(ValidationError) as caught:
            budgets.execution_budget_raise(execution_id=execution.id, user=self.users["admin"], token_budget=10_400)
        self.assertIn("more than the 10,400 tokens already used", caught.exception.messages[0])
        execution.refresh_from_db()
        self.assertEqual(execution.status, Status.BUDGET_EXCEEDED)


@pytest.mark.slow
class ExecutionBudgetRaiseRaceTests(TransactionTestCase):
    def test_two_admins_raising_at_once_resume_it_once(self) -> None:
        admins = [make_role_users()["admin"]]
        from tests.factories import make_user

        admins.append(make_user("adam", "admins"))
        execution = fixture_execution(graph_name="seed", status=Status.BUDGET_EXCEEDED, tokens_used=100,
                                             token_budget=100)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def raise_it(user, amount):  # type: ignore[no-untyped-def]
            try:
                barrier.wait(timeout=10)
                budgets.execution_budget_raise(execution_id=execution.id, user=user, token_budget=amount)
                outcomes.append("raised")
            except InvalidState:
                outcomes.append("lost")
            finally:
                close_old_connections()

        threads = [threading.Thread(target=raise_it, args=(user, amount)) for user, amount in zip(admins, (200, 300))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        self.assertEqual(sorted(outcomes), ["lost", "raised"])
        self.assertEqual(BudgetChange.objects.filter(execution=execution).count(), 1)
        execution.refresh_from_db()
        self.assertEqual(execution.status, Status.QUEUED)
        self.assertEqual(execution.token_budget, BudgetChange.objects.get().new_value)
