"""Run failed inbound callbacks of any vendor again (each is applied at most once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from integrations.inbound import reprocess
from integrations.models import WebhookEvent


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--connection", type=int, help="Only this connection's events (its id).")
        parser.add_argument("--id", type=int, action="append", dest="ids", help="Only these events (repeatable).")

    def handle(self, *args: Any, connection: int | None, ids: list[int] | None, **options: Any) -> None:
        events = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
        if connection:
            events = events.filter(connection_id=connection)
        if ids:
            events = events.filter(pk__in=ids)
        counts = reprocess(events)
        self.stdout.write(f"{counts['processed']} applied, {counts['failed']} failed again.")
