"""``manage.py slack_link USERNAME TEAM_ID SLACK_USER_ID`` links a Slack user to a Loopgate user;
``--unlink`` removes it; ``--list`` shows every link."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from slack_approvals import services
from slack_approvals.models import SlackIdentity


class Command(BaseCommand):
    help = "Link a Slack user (workspace id T…, user id U…) to a Loopgate user, so their clicks decide as them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="?")
        parser.add_argument("team_id", nargs="?", help="The Slack workspace id, T…")
        parser.add_argument("slack_user_id", nargs="?", help="The Slack user id, U… (profile → Copy member ID)")
        parser.add_argument("--unlink", action="store_true", help="Remove the link instead.")
        parser.add_argument("--list", action="store_true", help="List every link.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for identity in SlackIdentity.objects.select_related("user").order_by("user__username"):
                self.stdout.write(f"{identity.user.get_username()}\t{identity.team_id}\t{identity.slack_user_id}")
            return
        if not all(options[k] for k in ("username", "team_id", "slack_user_id")):
            raise CommandError("Give USERNAME TEAM_ID SLACK_USER_ID (or --list).")
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No Loopgate user {options['username']!r}.") from None
        if options["unlink"]:
            identity = SlackIdentity.objects.filter(user=user, team_id=options["team_id"],
                                                    slack_user_id=options["slack_user_id"]).first()
            if identity is None:
                raise CommandError("No such link.")
            services.identity_unlink(identity_id=identity.id, user=None)
            self.stdout.write(f"Unlinked {options['slack_user_id']} from {user.get_username()}.")
            return
        try:
            services.identity_link(team_id=options["team_id"], slack_user_id=options["slack_user_id"], user=user,
                                   linked_by=None)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"Linked Slack user {options['slack_user_id']} ({options['team_id']}) to "
                          f"{user.get_username()}.")
