"""List members whose vendor state differs from what the portal says it should be, per vendor, with the reason.

manage.py check_member_state [--client slug] [--read]   (--read also asks the vendors where a read exists)
Exits 1 when something differs, so it can run as a check.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import ngettext

from integrations.models import Client
from members.sync import drift


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--client", help="Only this client (its slug).")
        parser.add_argument("--read", action="store_true", help="Also read each vendor's state where it can be read.")

    def handle(self, *args: Any, client: str | None, read: bool, **options: Any) -> None:
        client_id = None
        if client:
            found = Client.objects.filter(slug=client).first()
            if found is None:
                raise CommandError(f"No client {client!r}.")
            client_id = found.pk
        rows = drift(client_id, read_vendors=read)
        for row in rows:
            self.stdout.write(f"{row.member.client.slug}\t{row.member.pk}\t{row.member}\t{row.vendor}\t{row.reason}")
        self.stdout.write(f"{len(rows)} member-vendor {ngettext('state differs', 'states differ', len(rows))}.")
        if rows:
            raise SystemExit(1)
