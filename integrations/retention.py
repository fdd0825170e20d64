"""Retention of the portal's own records: vendor call rows and job runs older than RECORD_RETENTION_DAYS go."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from integrations.models import JobRun, VendorCall


def prune_old_records(older_than_days: int | None = None) -> dict[str, int]:
    """Delete vendor call rows and job runs past the retention period (the every-minute jobs write 1,440 runs a
    day), in batches so a large backlog never locks a table for long."""
    days = settings.RECORD_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return {
        "vendor_calls": delete_in_batches(VendorCall.objects.filter(created_at__lt=cutoff)),
        "job_runs": delete_in_batches(JobRun.objects.filter(started_at__lt=cutoff)),
    }


def delete_in_batches(queryset: QuerySet[Any], batch_size: int = 5000) -> int:
    deleted = 0
    while True:
        batch = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += queryset.model.objects.filter(pk__in=batch).delete()[0]
