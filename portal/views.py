"""Portal-wide views: the health check."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app


def database_reachable() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any driver error means "not reachable"; the type is enough to act on
        return False, type(exc).__name__


def broker_reachable() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return True, "ok"
    except Exception as exc:  # kombu raises transport-specific errors
        return False, type(exc).__name__


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, 503 otherwise; for load balancers and uptime checks."""
    db_ok, db_detail = database_reachable()
    broker_ok, broker_detail = broker_reachable()
    healthy = db_ok and broker_ok
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": db_detail,
        "broker": broker_detail,
    }
    return JsonResponse(body, status=200 if healthy else 503)
