"""What the dashboard charts: series of records the portal already keeps (vendor calls, messages, callbacks, points,
and whatever a vendor adds), each counted or summed per hour or per day in SQL.

A vendor adds its own series with `activity_series()` in its flows module (e.g. First Orion's pushes), and its own
lines of trouble with `dashboard_troubles` in its `VendorAdmin` (they link to its admin pages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from integrations.models import VendorCall, WebhookEvent
from members.models import OutboundMessage, PointsTransaction


@dataclass(frozen=True)
class ActivitySeries:
    """One chart: `value` aggregated over `queryset` per bucket of `time_field`; `client_path` scopes it to clients."""

    title: str
    queryset: QuerySet[Any]
    time_field: str
    client_path: str
    value: Any = field(default_factory=lambda: Count("pk"))
    unit: str = ""


@dataclass(frozen=True)
class Trouble:
    """One line of the dashboard's "Needs attention" that a vendor adds (e.g. a failed First Orion push)."""

    client_id: int
    label: str
    url: str
    detail: str


def core_series() -> list[ActivitySeries]:
    applied = PointsTransaction.Status.APPLIED
    return [
        ActivitySeries(
            "Messages sent",
            OutboundMessage.objects.filter(status=OutboundMessage.Status.SENT),
            "sent_at",
            "connection__client",
        ),
        ActivitySeries("Callbacks received", WebhookEvent.objects.all(), "received_at", "connection__client"),
        ActivitySeries(
            "Points awarded",
            PointsTransaction.objects.filter(status=applied, activity=PointsTransaction.Activity.CREDIT),
            "created_at",
            "client",
            value=Sum("points"),
            unit="points",
        ),
    ]


# Vendor calls split by outcome: answered 2xx/3xx, or refused/failed/unanswered.
CALL_OUTCOMES = {
    "ok": Count("pk", filter=Q(status_code__lt=400, error_type="")),
    "failed": Count("pk", filter=Q(status_code__gte=400) | Q(status_code__isnull=True) | ~Q(error_type="")),
}
CALLS = VendorCall.objects.all()
