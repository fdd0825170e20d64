"""First Orion's records past their retention: finished pushes (sent or failed) FIRST_ORION_PUSH_RETENTION_DAYS after
they finished, with their batches and recipients. An uncertain push is kept: it is the evidence a person needs to
check with First Orion whether its batches were pushed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from integrations.first_orion.models import Push
from integrations.retention import prune

PUSH_RETENTION_DAYS = 90
PRUNABLE = (Push.Status.SENT, Push.Status.FAILED)


def prune_records(cutoff: Callable[[int], datetime]) -> dict[str, int]:
    days = getattr(settings, "FIRST_ORION_PUSH_RETENTION_DAYS", PUSH_RETENTION_DAYS)
    finished = Push.objects.filter(status__in=PRUNABLE, finished_at__isnull=False)
    return {"first_orion_pushes": prune(finished, "finished_at", cutoff(days))}
