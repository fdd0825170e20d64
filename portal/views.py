"""Portal-wide views: the health check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from integrations.alerts import alert
from integrations.liveness import silent_queues
from integrations.models import BeatLease, JobRun
from portal.broker import broker_reachable, queue_depths


def silent_after() -> timedelta:
    """Beat renews its lease every few seconds and the portal's most frequent schedules run every minute: silence
    for two of those intervals (HEALTH_SILENT_SECONDS) means beat is gone."""
    return timedelta(seconds=settings.HEALTH_SILENT_SECONDS)


def database_reachable() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any driver error means "not reachable"; the type is enough to act on
        return False, type(exc).__name__


def beat_liveness() -> tuple[bool, dict[str, Any]]:
    """Beat's lease (portal/beat.py) is renewed on every tick; one not renewed for HEALTH_SILENT_SECONDS is a dead
    beat. No lease at all means beat has not run against this database yet (reported, not failed)."""
    lease = BeatLease.objects.filter(name="celery-beat").first()
    if lease is None:
        return True, {"seen": False}
    age = (timezone.now() - lease.renewed_at).total_seconds()
    alive = age <= silent_after().total_seconds()
    if not alive:  # nothing scheduled runs without beat, so the health check is what notices (throttled)
        alert(
            "beat-silent",
            "No celery beat is running",
            f"The last beat ({lease.holder}) ticked {age:.0f} s ago: no scheduled job runs until one is started.",
        )
    return alive, {"seen": True, "holder": lease.holder, "age_s": round(age, 1)}


def queue_liveness() -> tuple[list[str], dict[str, Any]]:
    """Each queue's heartbeat age (integrations/liveness.py); a silent queue alerts the site admins (throttled)."""
    silent, ages = silent_queues()
    if silent:
        alert(
            f"queues-silent:{','.join(silent)}",
            f"No worker consumes {', '.join(silent)}",
            f"No worker has answered the heartbeat on {', '.join(silent)} for over {settings.HEALTH_SILENT_SECONDS} s: "
            "work queued there waits until a worker that consumes it is started.",
        )
    return silent, ages


def worker_liveness() -> dict[str, Any]:
    """When a worker last finished a recorded job (the every-minute jobs make this a heartbeat)."""
    last = JobRun.objects.exclude(finished_at=None).order_by("-finished_at").values_list("finished_at", flat=True)
    finished = last.first()
    if finished is None:
        return {"seen": False}
    return {"seen": True, "last_job_age_s": round((timezone.now() - finished).total_seconds(), 1)}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer and beat is alive, 503 otherwise; for load balancers and uptime
    checks. Also reports worker activity and queue depths for operators."""
    db_ok, db_detail = database_reachable()
    broker_ok, broker_detail = broker_reachable()
    beat_ok, beat = beat_liveness() if db_ok else (False, {"seen": False})
    silent, queue_ages = queue_liveness() if db_ok else ([], {})
    healthy = db_ok and broker_ok and beat_ok and not silent
    body: dict[str, Any] = {
        "status": "ok" if healthy else "unavailable",
        "database": db_detail,
        "broker": broker_detail,
    }
    if db_ok:
        body.update(beat=beat, worker=worker_liveness(), workers_by_queue=queue_ages)
    body["queues"] = queue_depths() if broker_ok else {}
    return JsonResponse(body, status=200 if healthy else 503)
