"""What the admin index shows: trouble first (failing connections, failed or interrupted job runs of the last 24
hours), then each visible client's connections as cards saying what to do next, then charts of the last 24 hours or
7 days read from the hourly counts the portal keeps as things happen (integrations/rollups.py), never from the
raw records, so the page costs the same at ten million calls a day as at ten."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from integrations import rollups
from integrations.activity import ActivitySeries, Trouble, core_series
from integrations.hooks import ExtendsAdmin, ReportsActivity, hooks
from integrations.models import Client, Connection, JobRun
from integrations.tenancy import is_site_admin, scope_to_clients, visible_clients

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
    admins = [module.ADMIN for module in hooks(ExtendsAdmin).values()]
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


def charts(user: Any, window: str, zone: ZoneInfo) -> list[Chart]:
    """Every chart from one query of the hourly rollups in the window (never the raw records): its cost follows
    the window shown and the number of connections, not the history kept."""
    span, unit = WINDOWS[window]
    now = timezone.now()
    since = bucket_start(now - span, unit, zone) + step(unit)
    labels = bucket_labels(since, now, unit, zone)
    series = core_series() + vendor_series()
    wanted = {rollups.CALLS, rollups.LATENCY, *(one.series for one in series)}
    sums = bucket_sums(rollups.window_sums(wanted, since, visible_client_pks(user)), unit, zone)
    found = call_charts(sums, labels)
    found += [series_chart(one, sums, labels) for one in series]
    return [lay_out(chart) for chart in found]


def vendor_series() -> list[ActivitySeries]:
    return [series for module in hooks(ReportsActivity).values() for series in module.activity_series()]


def visible_client_pks(user: Any) -> list[int] | None:
    """The clients whose counts the viewer sees; None for a site admin (all, and the portal's own)."""
    return None if is_site_admin(user) else list(visible_clients(user).values_list("pk", flat=True))


# (series, outcome) -> bucket start -> [events, summed value]
Sums = dict[tuple[str, str], dict[datetime, list[float]]]


def bucket_sums(rows: list[dict[str, Any]], unit: str, zone: ZoneInfo) -> Sums:
    """The hourly rows added up per bucket of the viewer's zone (an hour, or a local day)."""
    sums: Sums = {}
    for row in rows:
        bucket = bucket_start(row["hour"], unit, zone)
        counted = sums.setdefault((row["series"], row["outcome"]), {}).setdefault(bucket, [0.0, 0.0])
        counted[0] += row["n"] or 0
        counted[1] += row["value"] or 0
    return sums


def summed(sums: Sums, series: str, bucket: datetime, outcome: str | None = None, value: str = "count") -> float:
    """A series' events (or their summed value) in a bucket, of one outcome or of every outcome (None)."""
    index = 0 if value == "count" else 1
    return sum(
        per_bucket.get(bucket, [0.0, 0.0])[index]
        for (name, kind), per_bucket in sums.items()
        if name == series and (outcome is None or kind == outcome)
    )


def series_chart(series: ActivitySeries, sums: Sums, labels: dict[datetime, str]) -> Chart:
    outcome = series.outcome or None
    bars = [
        Bar(label, {"value": summed(sums, series.series, start, outcome, series.value)})
        for start, label in labels.items()
    ]
    return Chart(series.title, bars, unit=series.unit)


def call_charts(sums: Sums, labels: dict[datetime, str]) -> list[Chart]:
    """Vendor calls by outcome (answered 2xx/3xx, or refused/failed/unanswered) and their p95 latency per bucket,
    read from the latency histogram's buckets."""
    outcomes, latency = [], []
    for start, label in labels.items():
        ok = summed(sums, rollups.CALLS, start, rollups.OK)
        outcomes.append(Bar(label, {"ok": ok, "failed": summed(sums, rollups.CALLS, start) - ok}))
        histogram = {
            kind: per_bucket.get(start, [0.0])[0]
            for (name, kind), per_bucket in sums.items()
            if name == rollups.LATENCY
        }
        latency.append(Bar(label, {"value": round(rollups.quantile(histogram), 1)}))
    return [
        Chart("Vendor calls", outcomes, parts=CALL_PARTS),
        Chart("p95 latency of vendor calls", latency, unit="ms"),
    ]


CALL_PARTS = ("ok", "failed")


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
