"""Prometheus metrics at /metrics, protected by a bearer token (METRICS_TOKEN; the endpoint is off without one).

Counters and histograms are the running totals the portal counts as things happen (integrations/rollups.py, its
ALL_TIME rows), kept in the database so every web, worker and beat process is counted, not just the one that answers,
and a scrape reads a few rows per connection whatever the history. Queue depths are read from the broker.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterator

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from integrations import rollups
from integrations.models import Connection
from portal.broker import queue_depths

TOTALS = (rollups.CALLS, rollups.LATENCY, rollups.MESSAGES, rollups.CALLBACKS, rollups.JOB_RUNS)


class PortalCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        totals: dict[str, list[rollups.RunningTotal]] = defaultdict(list)
        for row in rollups.all_time(TOTALS):
            totals[row["series"]].append(row)
        vendors = dict(Connection.objects.values_list("pk", "vendor"))
        yield vendor_calls(totals[rollups.CALLS], vendors)
        yield call_latency(totals[rollups.LATENCY], vendors)
        yield by_outcome("portal_outbound_messages", "Messages by the outcome of their send", totals[rollups.MESSAGES])
        yield by_outcome(
            "portal_webhook_events", "Callbacks received, by how they were stored", totals[rollups.CALLBACKS]
        )
        yield by_outcome("portal_job_runs", "Job runs by how they ended", totals[rollups.JOB_RUNS])
        depth = GaugeMetricFamily("portal_queue_depth", "Messages waiting per Celery queue", labels=["queue"])
        for queue, size in queue_depths().items():
            if size is not None:
                depth.add_metric([queue], size)
        yield depth


def connection_labels(row: rollups.RunningTotal, vendors: dict[int, str]) -> list[str]:
    """vendor and connection; a connection deleted since is still counted under its id."""
    return [vendors.get(row["connection_pk"], "deleted"), str(row["connection_pk"])]


def vendor_calls(rows: list[rollups.RunningTotal], vendors: dict[int, str]) -> CounterMetricFamily:
    """Per outcome (ok; not_found and refused: answers the caller expected; failed; uncertain) and error kind."""
    family = CounterMetricFamily(
        "portal_vendor_calls",
        "Vendor calls by outcome (ok, not_found, refused, failed, uncertain) and the error's kind",
        labels=["vendor", "connection", "outcome", "error"],
    )
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for row in rows:  # hours counted before outcomes were labelled add to the same labels
        counts[(*connection_labels(row, vendors), *rollups.call_label(row["outcome"]))] += row["count"]
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def call_latency(rows: list[rollups.RunningTotal], vendors: dict[int, str]) -> HistogramMetricFamily:
    """The latency histogram per connection: cumulative buckets in ms, as Prometheus' `le`."""
    family = HistogramMetricFamily(
        "portal_vendor_call_latency_ms", "Latency of vendor calls in milliseconds", labels=["vendor", "connection"]
    )
    per_connection: dict[int, list[rollups.RunningTotal]] = defaultdict(list)
    for row in rows:
        per_connection[row["connection_pk"]].append(row)
    for _, found in sorted(per_connection.items()):
        counts = {row["outcome"]: row["count"] for row in found}
        cumulative, buckets = 0, []
        for bound in [*map(str, rollups.LATENCY_BUCKETS_MS), rollups.INF]:
            cumulative += counts.get(bound, 0)
            buckets.append((bound, cumulative))
        labels = connection_labels(found[0], vendors)
        family.add_metric(labels, buckets, sum_value=sum(row["total"] for row in found))
    return family


def by_outcome(name: str, documentation: str, rows: list[rollups.RunningTotal]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["outcome"])
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["outcome"]] += row["count"]
    for outcome, count in sorted(counts.items()):
        family.add_metric([outcome], count)
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
