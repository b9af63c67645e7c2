"""Print an API token for a user: ``python manage.py create_api_token USERNAME``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator import tokens


class Command(BaseCommand):
    help = (
        "Print the API token of USERNAME, made if the user has none. Send it as "
        "'Authorization: Token <key>'; it acts with the user's roles. --new replaces it."
    )
    # A broken graph entry must not stop this command (`manage.py check` reports it).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--new", action="store_true", help="Make a new token; the old one stops working.")

    def handle(self, *args: Any, username: str, new: bool, **options: Any) -> None:
        try:
            if new:
                token, created = tokens.api_token_create(username=username, actor=None), True
            else:
                token, created = tokens.api_token_get_or_create(username=username, actor=None)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        if created:
            self.stderr.write(f"Made a new API token for {username}.")
        # Only the key on stdout, so that scripts can capture it: TOKEN=$(manage.py create_api_token bob)
        self.stdout.write(token.key)
