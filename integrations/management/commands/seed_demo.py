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
from integrations.hooks import GuidesTheDemo, RetiresDemoSecrets, SeedsDemo
from integrations.models import Client, Connection
from integrations.tenancy import CLIENT_USERS_GROUP, ensure_client_users_group
from integrations.vendors import VENDORS
from members.models import Member, Segment
from members.segments import add_members

DEMO_PASSWORD = "portal-demo"


def demo_secrets(vendor: str) -> dict[str, str]:
    """The credentials the vendor's simulator accepts (its sandbox module's DEMO_SECRETS)."""
    return hooks.demo_secrets(VENDORS[vendor])


def demo_settings(vendor: str) -> dict[str, str]:
    return hooks.demo_settings(VENDORS[vendor])


def replace_retired_demo_secrets(connection: Connection) -> None:
    """A demo connection still holding credentials its vendor's demo retired gets today's (RetiresDemoSecrets)."""
    module = hooks.hook(VENDORS[connection.vendor], RetiresDemoSecrets)
    if module is None or connection.secrets_unreadable or connection.environment != Connection.Environment.SANDBOX:
        return
    stale = [name for name, value in module.RETIRED_DEMO_SECRETS.items() if connection.secrets.get(name) == value]
    if stale:
        current = demo_secrets(connection.vendor)
        connection.secrets = {**connection.secrets, **{name: current[name] for name in stale}}
        connection.save(update_fields=["secrets", "updated_at"])


def next_steps(client: Client) -> list[str]:
    """What each vendor's demo says to try next (GuidesTheDemo), in registry order."""
    found = [guide.demo_next_step(client) for guide in hooks.hooks(GuidesTheDemo).values()]
    return [step for step in found if step]


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
        for step in next_steps(client):
            self.stdout.write(step)

    def seed_vendor_demos(self, client: Client) -> None:
        """Each vendor's own demo records (its demo module may define `seed_demo(client)`; it must be idempotent)."""
        for demo in hooks.hooks(SeedsDemo).values():
            demo.seed_demo(client)

    def seed_loyalty_side(self, client: Client) -> None:
        """Three members in a segment (the vendors' demos add what their journeys need, e.g. a message template)."""
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
