"""Prometheus metrics at /metrics, protected by a bearer token (METRICS_TOKEN; the endpoint is off without one).

Figures are read from the records the portal keeps (vendor calls, messages, webhook events, job runs) and from the
broker at scrape time, so every web, worker and beat process is counted, not just the one that answers.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Avg, Count
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from integrations.models import JobRun, VendorCall, WebhookEvent
from members.models import OutboundMessage
from portal.views import queue_depths

WINDOW = timedelta(hours=1)


class PortalCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        since = timezone.now() - WINDOW
        calls = GaugeMetricFamily(
            "portal_vendor_calls_last_hour", "Vendor calls in the last hour", labels=["vendor", "connection", "outcome"]
        )
        latency = GaugeMetricFamily(
            "portal_vendor_call_latency_ms_avg_last_hour",
            "Mean latency of vendor calls",
            labels=["vendor", "connection"],
        )
        rows = (
            VendorCall.objects.filter(created_at__gte=since)
            .values("connection__vendor", "connection_id", "error_type")
            .annotate(n=Count("pk"), ms=Avg("latency_ms"))
        )
        for row in rows:
            labels = [row["connection__vendor"], str(row["connection_id"])]
            calls.add_metric([*labels, row["error_type"] or "ok"], row["n"])
            latency.add_metric(labels, row["ms"] or 0)
        yield calls
        yield latency
        yield counted("portal_outbound_messages", "Outbound messages by status", OutboundMessage.objects.all())
        yield counted("portal_webhook_events", "Inbound webhook events by status", WebhookEvent.objects.all())
        runs = JobRun.objects.filter(started_at__gte=timezone.now() - timedelta(days=1))
        yield counted("portal_job_runs_last_day", "Job runs of the last day by outcome", runs, field="outcome")
        depth = GaugeMetricFamily("portal_queue_depth", "Messages waiting per Celery queue", labels=["queue"])
        for queue, size in queue_depths().items():
            if size is not None:
                depth.add_metric([queue], size)
        yield depth


def counted(name: str, documentation: str, queryset: object, field: str = "status") -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[field])
    for row in queryset.values(field).annotate(n=Count("pk")).order_by():  # type: ignore[attr-defined]
        family.add_metric([row[field]], row["n"])
    return family


REGISTRY = CollectorRegistry()
REGISTRY.register(PortalCollector())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given, token):
        return HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
