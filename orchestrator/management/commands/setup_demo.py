"""Create the role groups and one demo user per role (idempotent)."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth.models import Group, User
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from orchestrator import roles

DEFAULT_PASSWORD = "loopgate-demo"
DEMO_USERS = (
    ("admin", roles.ADMINS, "Admin"),
    ("reviewer", roles.REVIEWERS, "Reviewer"),
    ("operator", roles.OPERATORS, "Operator"),
)


class Command(BaseCommand):
    help = "Create the groups admins, reviewers, operators and a demo user for each (password: loopgate-demo)."
    # A broken graph entry must not stop this command (`manage.py check` reports it).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--password", default=DEFAULT_PASSWORD)
        parser.add_argument("--groups-only", action="store_true", help="Only create the three groups.")

    @transaction.atomic
    def handle(self, *args: Any, password: str, groups_only: bool, **options: Any) -> None:
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in roles.ROLES}
        if not groups_only and not settings.DEBUG and password == DEFAULT_PASSWORD:
            raise CommandError(
                "With DEBUG off, demo users need a password of your own: setup_demo --password '…' "
                "(or only the groups: setup_demo --groups-only)."
            )
        if groups_only:
            self.stdout.write("Groups ready: " + ", ".join(roles.ROLES))
            return
        for username, group, first_name in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first_name, "email": f"{username}@example.com"}
            )
            if created:
                user.set_password(password)
                user.is_staff = group == roles.ADMINS
                user.save()
            user.groups.add(groups[group])
        address = f"http://{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or 8000}/"
        self.stdout.write(self.style.SUCCESS(f"Demo users ready. Log in at {address} as:"))
        for username, group, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<9} / {password}   ({group})")
