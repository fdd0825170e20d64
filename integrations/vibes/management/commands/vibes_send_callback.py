"""Act as Vibes: deliver a subscription callback to a Vibes connection's callback URL (for the demo and tests).

manage.py vibes_send_callback --client demo --member 3 --type subscription_added
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from integrations.http import VendorAPI
from integrations.models import Connection
from integrations.vibes.flows import person_id_of, vibes_external_id
from integrations.vibes.sandbox import callback_payload
from members.models import Member


class PortalAsVibes(VendorAPI):
    """The portal's own callback endpoint, called the way Vibes calls it."""

    vendor = "Vibes (sandbox sender)"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--client", required=True, help="Client slug.")
        parser.add_argument("--member", type=int, required=True, help="Member id.")
        parser.add_argument(
            "--type", choices=["subscription_added", "subscription_removed"], default="subscription_added"
        )
        parser.add_argument("--list", default="1234", help="Vibes subscription list id.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the portal answers.")

    def handle(self, *args: Any, client: str, member: int, type: str, list: str, url: str, **options: Any) -> None:
        connection = Connection.objects.filter(client__slug=client, vendor="vibes").first()
        target = Member.objects.filter(client__slug=client, pk=member).first()
        if connection is None or target is None:
            raise CommandError(f"No Vibes connection or no member {member} for client {client!r}.")
        payload = callback_payload(
            type,
            person_id=person_id_of(target) or f"sandbox-{target.pk}",
            external_id=vibes_external_id(target),
            list_id=list,
        )
        path = reverse("vibes-callback", args=[connection.inbound_token])
        response = PortalAsVibes(url).request("POST", path, json_body=payload)
        self.stdout.write(f"{type} for {target}: HTTP {response.status_code} {response.text}")
