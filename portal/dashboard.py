"""What the admin index shows: trouble first (failing connections, failed or interrupted job runs of the last 24
hours), then each visible client's connections as cards saying what to do next, then charts of the last 24 hours or
7 days read from the hourly counts the portal keeps as things happen (integrations/rollups.py), never from the
raw records, so the page costs the same at ten million calls a day as at ten."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from integrations import rollups
from integrations.activity import ActivitySeries, CountedIn, Trouble, core_series
from integrations.hooks import ExtendsAdmin, ReportsActivity, hooks
from integrations.http import FAILED, NOT_FOUND, OK, REFUSED, UNCERTAIN
from integrations.models import Client, Connection, JobRun
from integrations.tenancy import is_site_admin, scope_to_clients, visible_clients

WINDOWS = {"24h": (timedelta(hours=24), "hour"), "7d": (timedelta(days=7), "day")}
CHART_WIDTH, CHART_HEIGHT = 480, 130
PLOT_LEFT, PLOT_TOP, X_LABELS_HEIGHT = 40, 6, 14  # room for the y-axis' labels, the top tick's, the x-axis'
MAX_X_LABELS = 8  # labels under the axis at most (24 hours: every third); each bar's label is on hover


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
    """One bucket of a chart (an hour or a day), drawn even when nothing happened in it."""

    label: str
    values: dict[str, float]
    x: float = 0
    width: float = 0
    labelled: bool = False  # whether its label is written under the axis (every bucket's is on hover)
    summary: str = ""  # what it holds, on hover: "14h: 12 ok, 2 not found"
    # (part, y, height) stacked from the bottom, in SVG units
    parts: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.values.values())

    @property
    def middle(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Tick:
    """A value on the y-axis: its label and the height it is drawn at."""

    label: str
    y: float

    @property
    def text_y(self) -> float:
        return self.y + 3  # the label's baseline: centred on the line in a 9px font


@dataclass(frozen=True)
class Part:
    """One stacked part of a chart's bars (an outcome of the vendor calls), with the list of the rows it counts."""

    name: str
    label: str
    url: str = ""


@dataclass
class Chart:
    title: str
    bars: list[Bar]
    unit: str = ""
    parts: tuple[Part, ...] = (Part("value", "value"),)
    url: str = ""  # the admin list of the rows it counts, in the window
    # The figure shown in red when not zero (the vendor calls that failed or are uncertain), with its list.
    alarm_parts: tuple[str, ...] = ()
    alarm_url: str = ""
    note: str = ""  # what the total means, on hover (e.g. net of reversed awards)
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    ticks: list[Tick] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(bar.total for bar in self.bars)

    @property
    def peak(self) -> float:
        return max((bar.total for bar in self.bars), default=0)

    @property
    def alarm(self) -> float:
        return sum(bar.values.get(part, 0) for bar in self.bars for part in self.alarm_parts)

    # Geometry of the plot inside the SVG: the y-axis' labels on its left, the x-axis' labels under it.
    @property
    def plot_left(self) -> int:
        return PLOT_LEFT

    @property
    def tick_x(self) -> int:
        return PLOT_LEFT - 4

    @property
    def plot_right(self) -> int:
        return self.width

    @property
    def plot_top(self) -> int:
        return PLOT_TOP

    @property
    def plot_bottom(self) -> int:
        return self.height - X_LABELS_HEIGHT

    @property
    def plot_height(self) -> int:
        return self.plot_bottom - self.plot_top


@dataclass
class Dashboard:
    failing_connections: list[Connection]
    troubled_runs: list[JobRun]
    vendor_troubles: list[Trouble]
    clients: list[ClientCards]
    # Clients left out of "Clients and connections" (all on the Clients list).
    more_clients: int
    charts: list[Chart]
    window: str
    time_zone: str


def build_dashboard(user: Any, window: str = "24h", zone: ZoneInfo | None = None) -> Dashboard:
    """The dashboard of what `user` sees, its times and buckets in `zone` (the viewer's choice), else their clients'."""
    window = window if window in WINDOWS else "24h"
    visible = visible_clients(user)
    shown = clients_shown(visible)
    zone = zone or chart_zone(set(visible.order_by().values_list("time_zone", flat=True).distinct()[:2]))
    return Dashboard(
        failing_connections=failing_connections(user),
        troubled_runs=troubled_runs(user),
        vendor_troubles=vendor_troubles(user),
        clients=[ClientCards(client, [card_for(c, user) for c in client.connections.all()]) for client in shown],
        more_clients=visible.count() - len(shown),
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


# Clients whose connections are all active that the dashboard shows: a deployment serving many clients keeps the
# page short, and the rest are on the Clients list.
CLIENTS_SHOWN = 8


def clients_shown(visible: QuerySet[Client]) -> list[Client]:
    """Every client with a connection that is not active (failing, disabled, not verified yet) or with none, then
    others up to CLIENTS_SHOWN in all, by name: the clients left out have only active connections."""
    all_active = ~Exists(Connection.objects.filter(client=OuterRef("pk")).exclude(status=Connection.Status.ACTIVE))
    has_some = Exists(Connection.objects.filter(client=OuterRef("pk")))
    connections = Prefetch("connections", queryset=Connection.objects.defer("secrets").order_by("vendor"))
    clients = visible.prefetch_related(connections).order_by("name", "pk")
    attention = list(clients.exclude(all_active & has_some))
    return attention + list(clients.filter(all_active & has_some)[: max(0, CLIENTS_SHOWN - len(attention))])


def chart_zone(zones: set[str]) -> ZoneInfo:
    """Buckets follow the client's day when the viewer sees one client (or all share a zone); else UTC."""
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
    found = call_charts(sums, labels, since)
    found += [series_chart(one, sums, labels, since) for one in series]
    return [lay_out(chart) for chart in found]


def vendor_series() -> list[ActivitySeries]:
    return [series for module in hooks(ReportsActivity).values() for series in module.activity_series()]


def visible_client_pks(user: Any) -> list[int] | None:
    """The clients whose counts the viewer sees; None for a site admin (all, and the portal's own)."""
    return None if is_site_admin(user) else list(visible_clients(user).values_list("pk", flat=True))


# (series, outcome) -> bucket start -> [events, summed value]
Sums = dict[tuple[str, str], dict[datetime, list[float]]]


def bucket_sums(rows: list[rollups.HourSums], unit: str, zone: ZoneInfo) -> Sums:
    """The hourly rows added up per bucket of the viewer's zone (an hour, or a local day)."""
    sums: Sums = {}
    for row in rows:
        bucket = bucket_start(row["hour"], unit, zone)
        counted = sums.setdefault((row["series"], row["outcome"]), {}).setdefault(bucket, [0.0, 0.0])
        counted[0] += row["n"] or 0
        counted[1] += row["value"] or 0
    return sums


def summed(
    sums: Sums, series: str, bucket: datetime, outcome: str | None = None, value: str = "count", *,
    label: Callable[[str], str] | None = None,
) -> float:  # fmt: skip
    """A series' events (or their summed value) in a bucket, of one outcome or of every outcome (None); with
    `label`, of the outcomes it names `outcome` (e.g. every "failed:<kind>" as "failed")."""
    index = 0 if value == "count" else 1
    return sum(
        per_bucket.get(bucket, [0.0, 0.0])[index]
        for (name, kind), per_bucket in sums.items()
        if name == series and (outcome is None or (label(kind) if label else kind) == outcome)
    )


def series_chart(series: ActivitySeries, sums: Sums, labels: dict[datetime, str], since: datetime) -> Chart:
    outcome = series.outcome or None
    bars = []
    for start, label in labels.items():
        value = summed(sums, series.series, start, outcome, series.value)
        if series.net_of:
            value -= summed(sums, series.series, start, series.net_of, series.value)
        bars.append(Bar(label, {"value": value}))
    url = series.counted_in.url(since) if series.counted_in else ""
    note = "net of reversals" if series.net_of else ""
    return Chart(series.title, bars, unit=series.unit, url=url, note=note)


CALLS_LIST = CountedIn("admin:integrations_vendorcall_changelist", time_column="created_at")
# Stacked from the bottom: the answers, then the failures on top (red), so trouble is seen first.
CALL_PARTS = (
    (OK, "ok"),
    (NOT_FOUND, "not found"),
    (REFUSED, "refused"),
    (UNCERTAIN, "uncertain"),
    (FAILED, "failed"),
)
# The vendor calls' "failed" figure and its red: real failures, and calls that may have been acted on unanswered.
# Expected answers (a look-up's 404, a verify probe's refusal) are not among them.
CALL_FAILURES = (FAILED, UNCERTAIN)


def call_label(outcome: str) -> str:
    return rollups.call_label(outcome)[0]


def call_parts(since: datetime) -> tuple[Part, ...]:
    """Each outcome with the list of its calls: the list's outcome filter lists failed and uncertain ones together
    (whether a call was uncertain is not kept on its row), as the "failed" figure counts them."""
    return tuple(
        Part(name, label, CALLS_LIST.url(since, outcome=FAILED if name in CALL_FAILURES else name))
        for name, label in CALL_PARTS
    )


def call_charts(sums: Sums, labels: dict[datetime, str], since: datetime) -> list[Chart]:
    """Vendor calls by outcome (answered, an answer the caller expected, failed, uncertain) and their p95 latency
    per bucket, read from the latency histogram's buckets."""
    outcomes, latency = [], []
    for start, label in labels.items():
        values = {name: summed(sums, rollups.CALLS, start, name, label=call_label) for name, _ in CALL_PARTS}
        outcomes.append(Bar(label, values))
        histogram = {
            kind: per_bucket.get(start, [0.0])[0]
            for (name, kind), per_bucket in sums.items()
            if name == rollups.LATENCY
        }
        latency.append(Bar(label, {"value": round(rollups.quantile(histogram), 1)}))
    calls = Chart(
        "Vendor calls",
        outcomes,
        parts=call_parts(since),
        url=CALLS_LIST.url(since),
        alarm_parts=CALL_FAILURES,
        alarm_url=CALLS_LIST.url(since, outcome=FAILED),
    )
    return [calls, Chart("p95 latency of vendor calls", latency, unit="ms", url=CALLS_LIST.url(since))]


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
    """SVG geometry (drawn by the template: no script, no inline style): a slot for every bucket, the bars stacked
    in it, a y-axis from 0 to a round value at or above the peak, and a label under every few buckets."""
    count = max(len(chart.bars), 1)
    slot = (chart.plot_right - chart.plot_left) / count
    top = axis_top(chart.peak)
    scale = chart.plot_height / top
    every = math.ceil(count / MAX_X_LABELS)
    for index, bar in enumerate(chart.bars):
        bar.x, bar.width = chart.plot_left + index * slot + 1, max(slot - 2, 1)
        bar.labelled = index % every == 0
        base = float(chart.plot_bottom)
        for part in chart.parts:
            height = bar.values.get(part.name, 0) * scale
            base -= height
            bar.parts.append((part.name, base, height))
        bar.summary = f"{bar.label}: {held(bar, chart)}"
    values = [0, top / 2, top] if top % 2 == 0 else [0, top]
    chart.ticks = [Tick(short_number(value), chart.plot_bottom - value * scale) for value in values]
    return chart


def held(bar: Bar, chart: Chart) -> str:
    """A bucket's figures in words: "12 ok, 2 not found" for the calls (only the outcomes it holds), "40 points"."""
    if len(chart.parts) == 1:
        value = bar.values.get(chart.parts[0].name, 0)
        return f"{value:,.0f}{' ' + chart.unit if chart.unit else ''}"
    held = [f"{bar.values[part.name]:,.0f} {part.label}" for part in chart.parts if bar.values.get(part.name)]
    return ", ".join(held) or "none"


def axis_top(peak: float) -> float:
    """The y-axis' top: the smallest 1, 2 or 5 times a power of ten at or above the peak (1 for an empty chart)."""
    if peak <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(peak))
    return next(step * magnitude for step in (1, 2, 5, 10) if step * magnitude >= peak)


def short_number(value: float) -> str:
    """A tick's label in a few characters: 0, 50, 2,000, 20k, 5M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:,.0f}"
