"""Login throttling (django-axes): per account and per address, for the login page and bad API tokens."""

from __future__ import annotations

import datetime
import time

from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from orchestrator.models import AuditEntry
from tests.base import PageTestCase

LIMIT = 5  # LOOPGATE_LOGIN_FAILURE_LIMIT's default


class LoginThrottlingTests(PageTestCase):
    def attempt(self, username: str, password: str, *, ip: str = "10.0.0.1") -> int:
        return Client().post("/login/", {"username": username, "password": password},
                             REMOTE_ADDR=ip).status_code

    def test_an_account_is_locked_after_the_limit_even_for_the_right_password_and_the_lockout_is_audited(self) -> None:
        for i in range(LIMIT - 1):
            self.assertEqual(self.attempt("otto", f"wrong-{i}", ip=f"10.0.1.{i}"), 200)
        self.assertEqual(self.attempt("otto", "wrong-last", ip="10.0.1.99"), 429)
        # From yet another address, with the right password: still locked (the account is).
        response = Client().post("/login/", {"username": "otto", "password": "pw-for-tests"}, REMOTE_ADDR="10.0.2.1")
        self.assertEqual(response.status_code, 429)
        self.assertIn("Too many failed logins", response.content.decode())
        self.assertTrue(int(response["Retry-After"]) > 0)
        entry = AuditEntry.objects.get(kind=AuditEntry.Kind.LOCKOUT, outcome="locked out")
        self.assertEqual(entry.actor, self.users["operator"])
        self.assertEqual(entry.detail["username"], "otto")
        # Another account is not locked.
        self.assertEqual(self.attempt("rita", "pw-for-tests", ip="10.0.3.1"), 302)

    def test_an_address_is_locked_after_the_limit_across_accounts(self) -> None:
        for i in range(LIMIT):
            self.attempt(f"nobody-{i}", "wrong", ip="10.9.9.9")
        self.assertEqual(self.attempt("rita", "pw-for-tests", ip="10.9.9.9"), 429)
        self.assertEqual(self.attempt("rita", "pw-for-tests", ip="10.9.9.10"), 302)

    def test_a_lockout_ends_after_its_time(self) -> None:
        with override_settings(LOOPGATE_LOGIN_LOCKOUT_SECONDS=1, AXES_COOLOFF_TIME=datetime.timedelta(seconds=1)):
            for i in range(LIMIT):
                self.attempt("otto", "wrong")
            self.assertEqual(self.attempt("otto", "pw-for-tests"), 429)
            time.sleep(1.2)
            self.assertEqual(self.attempt("otto", "pw-for-tests"), 302)

    def test_admins_see_the_lockouts_and_may_lift_one_others_may_not(self) -> None:
        for i in range(LIMIT):
            self.attempt("otto", "wrong", ip="10.0.0.7")
        self.login("admin")
        page = self.client.get("/tokens/").content.decode()
        self.assertIn("Login lockouts", page)
        self.assertIn('account <code class="mono">otto</code>', page)
        self.assertIn('address <code class="mono">10.0.0.7</code>', page)
        # The audit log shows lockouts to admins only.
        self.assertIn("otto from 10.0.0.7", self.client.get("/approvals/audit/").content.decode())
        self.login("reviewer")
        self.assertNotIn("otto from 10.0.0.7", self.client.get("/approvals/audit/").content.decode())
        self.assertEqual(self.client.post("/tokens/lockouts/lift/", {"kind": "account", "value": "otto"}).status_code,
                         403)
        self.assertEqual(self.attempt("otto", "pw-for-tests", ip="10.0.0.8"), 429)

        self.login("admin")
        self.client.post("/tokens/lockouts/lift/", {"kind": "account", "value": "otto"})
        self.assertEqual(self.attempt("otto", "pw-for-tests", ip="10.0.0.8"), 302)
        # Those failures were the account's: forgotten, they no longer lock the address either.
        self.assertNotIn("10.0.0.7</code>", self.client.get("/tokens/").content.decode())
        self.assertTrue(AuditEntry.objects.filter(kind=AuditEntry.Kind.LOCKOUT, outcome="lifted",
                                                  actor=self.users["admin"]).exists())


class ApiTokenThrottlingTests(PageTestCase):
    def call(self, key: str, *, ip: str = "10.1.0.1") -> tuple[int, dict]:
        response = Client().get("/api/v1/executions/", HTTP_AUTHORIZATION=f"Token {key}", REMOTE_ADDR=ip)
        return response.status_code, response.json()

    def test_bad_tokens_lock_their_address_and_a_good_token_from_it_is_refused_until_lifted(self) -> None:
        good = Token.objects.create(user=self.users["operator"]).key
        self.assertEqual(self.call(good)[0], 200)
        statuses = [self.call(f"bad{i:037d}")[0] for i in range(LIMIT)]
        self.assertEqual(statuses[:-1], [401] * (LIMIT - 1))
        self.assertEqual(statuses[-1], 429)
        status, body = self.call(good)
        self.assertEqual(status, 429)
        self.assertEqual(body["code"], "throttled")
        self.assertIn("Too many failed logins", body["message"])
        self.assertEqual(self.call(good, ip="10.1.0.2")[0], 200)  # another address is not locked
        self.assertTrue(AuditEntry.objects.filter(kind=AuditEntry.Kind.LOCKOUT, detail__via="api token").exists())

        self.login("admin")
        self.client.post("/tokens/lockouts/lift/", {"kind": "address", "value": "10.1.0.1"})
        self.assertEqual(self.call(good)[0], 200)
