"""First Orion's records past their retention: finished pushes (sent or failed) FIRST_ORION_PUSH_RETENTION_DAYS after
they finished, with their batches and recipients. A push with an uncertain batch is kept (uncertain, or failed by
another batch): it is the evidence a person needs to check with First Orion whether that batch was pushed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.db.models import Exists, OuterRef

from integrations.first_orion.models import Push, PushBatch
from integrations.retention import prune

PUSH_RETENTION_DAYS = 90
PRUNABLE = (Push.Status.SENT, Push.Status.FAILED)


def prune_records(cutoff: Callable[[int], datetime]) -> dict[str, int]:
    days = getattr(settings, "FIRST_ORION_PUSH_RETENTION_DAYS", PUSH_RETENTION_DAYS)
    uncertain_batch = PushBatch.objects.filter(push=OuterRef("pk"), status=PushBatch.Status.UNCERTAIN)
    finished = Push.objects.filter(status__in=PRUNABLE, finished_at__isnull=False).exclude(Exists(uncertain_batch))
    return {"first_orion_pushes": prune(finished, "finished_at", cutoff(days))}
