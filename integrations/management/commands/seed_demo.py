"""Create the demo: a site admin, a demo client with sandbox connections to every vendor, and a client user.

Idempotent: running it again changes nothing that exists. For local use only; it refuses to run with DEBUG off
unless --force is given.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from integrations import hooks
from integrations.hooks import SeedsDemo
from integrations.models import Client, Connection
from integrations.tenancy import CLIENT_USERS_GROUP, ensure_client_users_group
from integrations.vendors import VENDORS
from members.models import Member, MessageTemplate, Segment
from members.segments import add_members

DEMO_PASSWORD = "portal-demo"
# Demo secrets of earlier versions that were common words: secrets are redacted wherever they appear, so the Vibes
# username "sandbox" blanked that word in every URL and log line. A demo connection still holding one gets today's.
RETIRED_DEMO_SECRETS: dict[str, dict[str, str]] = {"vibes": {"api_username": "sandbox"}}


def demo_secrets(vendor: str) -> dict[str, str]:
    """The credentials the vendor's simulator accepts (its sandbox module's DEMO_SECRETS)."""
    return hooks.demo_secrets(VENDORS[vendor])


def demo_settings(vendor: str) -> dict[str, str]:
    return hooks.demo_settings(VENDORS[vendor])


def replace_retired_demo_secrets(connection: Connection) -> None:
    retired = RETIRED_DEMO_SECRETS.get(connection.vendor, {})
    if connection.secrets_unreadable or connection.environment != Connection.Environment.SANDBOX:
        return
    stale = [name for name, value in retired.items() if connection.secrets.get(name) == value]
    if stale:
        current = demo_secrets(connection.vendor)
        connection.secrets = {**connection.secrets, **{name: current[name] for name in stale}}
        connection.save(update_fields=["secrets", "updated_at"])


def next_step(attentive: Connection) -> str:
    """What to do next with the demo, from the Attentive connection's real state (a second run must not tell someone
    to activate what is already active)."""
    status = Connection.Status
    if attentive.status == status.DRAFT:
        return (
            "Next: Attentive is in the sandbox and still draft: open the client, click 'Activate Attentive' and "
            "'Save and verify' (the sandbox key is stored; /sandbox/ lists every simulator's credentials). Then "
            "subscribe the members and add a loyalty event."
        )
    if attentive.status == status.DISABLED:
        return "Next: Attentive is disabled: return its connection to draft, then activate it again."
    if attentive.status == status.FAILING:
        return f"Next: Attentive is failing ({attentive.last_check_result}): verify its connection again."
    return (
        "Attentive is active: subscribe the members at Attentive and add a loyalty event "
        "(README, 'Trying the Attentive journey (all in the sandbox)')."
    )


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates known passwords: run it only in development, or pass --force.")
        users = get_user_model()
        admin = users.objects.filter(username="admin").first()
        if admin is None:
            admin = users.objects.create_superuser("admin", "admin@example.com", DEMO_PASSWORD)
        client, _ = Client.objects.get_or_create(
            slug="demo", defaults={"name": "Demo Outfitters", "site_id": "100001", "default_region": "US"}
        )
        for vendor in VENDORS:
            connection, _ = Connection.objects.get_or_create(
                client=client,
                vendor=vendor,
                defaults={
                    "environment": Connection.Environment.SANDBOX,
                    "secrets": demo_secrets(vendor),
                    "settings": demo_settings(vendor),
                },
            )
            replace_retired_demo_secrets(connection)
        self.seed_loyalty_side(client)
        self.seed_vendor_demos(client)
        client_user = users.objects.filter(username="demo-client").first()
        if client_user is None:
            client_user = users.objects.create_user("demo-client", "client@example.com", DEMO_PASSWORD, is_staff=True)
            ensure_client_users_group()
            client_user.groups.add(Group.objects.get(name=CLIENT_USERS_GROUP))
            client.users.add(client_user)
        self.stdout.write(
            f"Demo ready: site admin 'admin' and client user 'demo-client', password '{DEMO_PASSWORD}'; "
            f"client '{client.name}' with {client.connections.count()} sandbox connections."
        )
        self.stdout.write(next_step(Connection.objects.get(client=client, vendor="attentive")))

    def seed_vendor_demos(self, client: Client) -> None:
        """Each vendor's own demo records (its demo module may define `seed_demo(client)`; it must be idempotent)."""
        for demo in hooks.hooks(SeedsDemo).values():
            demo.seed_demo(client)

    def seed_loyalty_side(self, client: Client) -> None:
        """Three members and a message template, so the Attentive journey can be tried (its sign-up source is
        Attentive's own demo record)."""
        for n, (first, last) in enumerate([("Amanda", "Reyes"), ("Brian", "Paul"), ("Jacob", "Smith")]):
            Member.objects.get_or_create(
                client=client,
                phone=f"+1770765175{n}",
                defaults={"first_name": first, "last_name": last, "email": f"{first.lower()}@example.com"},
            )
        segment, created = Segment.objects.get_or_create(
            client=client, name="Demo members", defaults={"external_id": "demo-1", "external_name": "Demo members"}
        )
        if created:
            add_members(segment, Member.objects.filter(client=client))
        MessageTemplate.objects.get_or_create(
            client=client,
            event_type="points_earned",
            defaults={
                "connection": Connection.objects.get(client=client, vendor="attentive"),
                "text": "Hi {first_name}, you earned {points} points at {client_name}. Balance: {points_balance}.",
            },
        )
