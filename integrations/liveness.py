"""Is every queue consumed? Each minute beat queues a heartbeat task on every portal queue; the worker that takes it
records the time (one WorkerHeartbeat row per queue). /healthz reads those rows: a queue silent for
HEALTH_SILENT_SECONDS has no live worker. A queue never seen is reported, not failed (a portal that has not started
its workers yet)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from integrations.models import WorkerHeartbeat
from integrations.queue import task_named

HEARTBEAT_TASK = "integrations.worker_heartbeat"


def send_heartbeats() -> int:
    """One heartbeat on each queue; one that no worker takes within a minute expires unrun (nothing piles up)."""
    task = task_named(HEARTBEAT_TASK)
    for queue in settings.PORTAL_QUEUES:
        task.apply_async((queue,), queue=queue, expires=60)
    return len(settings.PORTAL_QUEUES)


def record_heartbeat(queue: str, worker: str) -> None:
    WorkerHeartbeat.objects.update_or_create(queue=queue, defaults={"worker": worker, "seen_at": timezone.now()})


def silent_queues() -> tuple[list[str], dict[str, Any]]:
    """The queues whose last heartbeat is older than HEALTH_SILENT_SECONDS, and each queue's age for the report."""
    seen = dict(WorkerHeartbeat.objects.values_list("queue", "seen_at"))
    now = timezone.now()
    ages = {
        queue: round((now - seen[queue]).total_seconds(), 1) if queue in seen else None
        for queue in settings.PORTAL_QUEUES
    }
    silent = [queue for queue, age in ages.items() if age is not None and age > settings.HEALTH_SILENT_SECONDS]
    return sorted(silent), ages
