"""What the admin index shows: trouble first (failing connections, failed or interrupted job runs of the last 24
hours), then each visible client's connections as cards saying what to do next, then charts of the last 24 hours or
7 days drawn from the records the portal keeps, aggregated in SQL (one grouped query per chart)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection as db
from django.db.models import Aggregate, FloatField, Prefetch, QuerySet
from django.db.models.functions import TruncDay, TruncHour
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from integrations.activity import CALL_OUTCOMES, CALLS, ActivitySeries, Trouble, core_series
from integrations.models import Client, Connection, JobRun
from integrations.tenancy import is_site_admin, scope_to_clients, visible_clients
from integrations.vendors import vendor_modules

WINDOWS = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "day")}
CHART_WIDTH, CHART_HEIGHT = 480, 120


@dataclass
class ConnectionCard:
    connection: Connection
    next_step: str
    next_url: str


@dataclass
class ClientCards:
    client: Client
    cards: list[ConnectionCard]


@dataclass
class Bar:
    label: str
    values: dict[str, float]
    x: float = 0
    width: float = 0
    # (part, y, height) stacked from the bottom, in SVG units
    parts: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.values.values())


@dataclass
class Chart:
    title: str
    bars: list[Bar]
    unit: str = ""
    parts: tuple[str, ...] = ("value",)
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def total(self) -> float:
        return sum(bar.total for bar in self.bars)

    @property
    def peak(self) -> float:
        return max((bar.total for bar in self.bars), default=0)


@dataclass
class Dashboard:
    failing_connections: list[Connection]
    troubled_runs: list[JobRun]
    vendor_troubles: list[Trouble]
    clients: list[ClientCards]
    charts: list[Chart]
    window: str
    time_zone: str


def build_dashboard(user: Any, window: str = "24h") -> Dashboard:
    window = window if window in WINDOWS else "24h"
    clients = list(
        visible_clients(user).prefetch_related(
            Prefetch("connections", queryset=Connection.objects.defer("secrets").order_by("vendor"))
        )
    )
    zone = chart_zone(clients)
    return Dashboard(
        failing_connections=failing_connections(user),
        troubled_runs=troubled_runs(user),
        vendor_troubles=vendor_troubles(user),
        clients=[ClientCards(client, [card_for(c, user) for c in client.connections.all()]) for client in clients],
        charts=charts(user, window, zone),
        window=window,
        time_zone=str(zone),
    )


def failing_connections(user: Any) -> list[Connection]:
    connections = Connection.objects.defer("secrets").select_related("client")
    return list(scope_to_clients(connections.filter(status=Connection.Status.FAILING), user))


def troubled_runs(user: Any) -> list[JobRun]:
    since = timezone.now() - timedelta(hours=24)
    troubled = (JobRun.Outcome.FAILED, JobRun.Outcome.INTERRUPTED)
    runs = JobRun.objects.select_related("client").filter(outcome__in=troubled, started_at__gte=since)
    # Portal-wide runs (no client) reach site admins only: scoping drops them for client users.
    return list(scope_to_clients(runs, user)[:50])


def vendor_troubles(user: Any) -> list[Trouble]:
    """What each vendor reports needs attention in the last 24 hours (e.g. failed pushes), for the viewer's clients."""
    since = timezone.now() - timedelta(hours=24)
    visible = set(visible_clients(user).values_list("pk", flat=True))
    # Vendors' admin modules are looked up when asked (this module loads with the admin site, before them).
    admins = [module.ADMIN for module in vendor_modules("admin").values()]
    sources = [admin.dashboard_troubles for admin in admins if admin.dashboard_troubles]
    return [trouble for source in sources for trouble in source(since) if trouble.client_id in visible][:50]


def chart_zone(clients: list[Client]) -> ZoneInfo:
    """Buckets follow the client's day when the viewer sees one client (or all share a zone); else UTC."""
    zones = {client.time_zone for client in clients}
    return ZoneInfo(zones.pop() if len(zones) == 1 else "UTC")


# --- Connection cards --------------------------------------------------------------------------------------------


def card_for(connection: Connection, user: Any) -> ConnectionCard:
    step, url = next_step(connection, is_site_admin(user))
    return ConnectionCard(connection, step, url)


def next_step(connection: Connection, site_admin: bool) -> tuple[str, str]:
    """What to do about a connection, with a link to the exact form the viewer may use."""
    status = Connection.Status
    form = setup_url(connection, site_admin)
    if connection.status == status.DRAFT:
        return f"Enter the {connection.spec.label} credentials and click “Save and verify”.", form
    if connection.status == status.FAILING:
        return "Read the last check's result, fix the credentials or settings, then “Save and verify”.", form
    if connection.status == status.DISABLED:
        return "Disabled: nothing is sent. Verify it again to switch it back on.", form
    return "Working. Nothing to do.", ""


def setup_url(connection: Connection, site_admin: bool) -> str:
    """The vendor's own set-up page of the client (a client page named after the vendor, e.g. Attentive's
    activation; those are site admins' pages) or else the connection's form."""
    if not site_admin:
        return reverse("admin:integrations_connection_change", args=[connection.pk])
    try:
        return reverse(f"admin:integrations_client_{connection.vendor}", args=[connection.client_id])
    except NoReverseMatch:
        return reverse("admin:integrations_connection_change", args=[connection.pk])


# --- Charts ------------------------------------------------------------------------------------------------------


class Percentile95(Aggregate):
    """PostgreSQL's 95th percentile (an ordered-set aggregate Django has no class for)."""

    function = "percentile_cont"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def charts(user: Any, window: str, zone: ZoneInfo) -> list[Chart]:
    span, unit = WINDOWS[window]
    now = timezone.now()
    since = bucket_start(now - span, unit, zone) + step(unit)
    labels = bucket_labels(since, now, unit, zone)
    calls = scoped(CALLS, "connection__client", user).filter(created_at__gte=since)
    found = call_charts(calls, labels, unit, zone)
    for series in core_series() + vendor_series():
        rows = scoped(series.queryset, series.client_path, user).filter(**{f"{series.time_field}__gte": since})
        chart = grouped_chart(series.title, rows, series.time_field, {"value": series.value}, labels, unit, zone)
        chart.unit = series.unit
        found.append(chart)
    return [lay_out(chart) for chart in found]


def vendor_series() -> list[ActivitySeries]:
    flows = vendor_modules("flows").values()
    return [series for module in flows if hasattr(module, "activity_series") for series in module.activity_series()]


def scoped(queryset: QuerySet[Any], client_path: str, user: Any) -> QuerySet[Any]:
    if is_site_admin(user):
        return queryset
    return queryset.filter(**{f"{client_path}__in": visible_clients(user).values("pk")})


def trunc(unit: str, field_name: str, zone: ZoneInfo) -> Any:
    return (TruncHour if unit == "hour" else TruncDay)(field_name, tzinfo=zone)


def grouped_chart(
    title: str,
    rows: QuerySet[Any],
    time_field: str,
    values: dict[str, Any],
    labels: dict[datetime, str],
    unit: str,
    zone: ZoneInfo,
) -> Chart:
    per_bucket = rows.order_by().annotate(bucket=trunc(unit, time_field, zone)).values("bucket").annotate(**values)
    found = {row["bucket"]: row for row in per_bucket}
    bars = [
        Bar(label, {part: float((found.get(start) or {}).get(part) or 0) for part in values})
        for start, label in labels.items()
    ]
    return Chart(title, bars, parts=tuple(values))


def call_charts(calls: QuerySet[Any], labels: dict[datetime, str], unit: str, zone: ZoneInfo) -> list[Chart]:
    """Vendor calls by outcome and their p95 latency per bucket, in one pass over the window's calls: in SQL on
    PostgreSQL; SQLite (development) has no percentile, so Python takes the latencies there."""
    per_bucket = calls.order_by().annotate(bucket=trunc(unit, "created_at", zone)).values("bucket")
    if db.vendor == "postgresql":
        rows = {row["bucket"]: row for row in per_bucket.annotate(**CALL_OUTCOMES, p95=Percentile95("latency_ms"))}
    else:
        rows = {row["bucket"]: row for row in per_bucket.annotate(**CALL_OUTCOMES)}
        latencies: dict[datetime, list[int]] = {}
        for bucket, latency in per_bucket.values_list("bucket", "latency_ms"):
            latencies.setdefault(bucket, []).append(latency)
        for bucket, values in latencies.items():
            rows[bucket]["p95"] = percentile_95(values)
    empty: dict[str, Any] = {}
    outcomes = [Bar(label, {part: float(rows.get(start, empty).get(part) or 0) for part in CALL_OUTCOMES})
                for start, label in labels.items()]  # fmt: skip
    latency = [Bar(label, {"value": float(rows.get(start, empty).get("p95") or 0)}) for start, label in labels.items()]
    return [
        Chart("Vendor calls", outcomes, parts=tuple(CALL_OUTCOMES)),
        Chart("p95 latency of vendor calls", latency, unit="ms"),
    ]


def percentile_95(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))])


def step(unit: str) -> timedelta:
    return timedelta(hours=1) if unit == "hour" else timedelta(days=1)


def bucket_start(moment: datetime, unit: str, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    return local if unit == "hour" else local.replace(hour=0)


def bucket_labels(since: datetime, now: datetime, unit: str, zone: ZoneInfo) -> dict[datetime, str]:
    """Every bucket of the window, oldest first, with its label ("14h" or "Mon 23")."""
    labels, start = {}, since
    while start <= now:
        labels[start] = f"{start:%H}h" if unit == "hour" else f"{start:%a %d}"
        start = bucket_start(start + step(unit), unit, zone)
    return labels


def lay_out(chart: Chart) -> Chart:
    """SVG geometry for each bar (drawn by the template: no script, no inline style)."""
    count = max(len(chart.bars), 1)
    slot = chart.width / count
    scale = (chart.height - 14) / chart.peak if chart.peak else 0
    for index, bar in enumerate(chart.bars):
        bar.x, bar.width = index * slot + 1, max(slot - 2, 1)
        base = float(chart.height - 12)
        for part in chart.parts:
            height = bar.values.get(part, 0) * scale
            base -= height
            bar.parts.append((part, base, height))
    return chart
