"""Hourly counts of what happens, kept as it happens, so the dashboard's charts and /metrics never read history.

Each event adds to two rows of `Rollup` (integrations/models.py) in one statement: its hour's row and the ALL_TIME
row of the same key (the running total /metrics exports as a counter). A vendor call also adds to its latency
bucket's rows, so p95 is read from a histogram, never from the calls. The increment is one
`INSERT … ON CONFLICT … DO UPDATE SET count = count + excluded.count` (PostgreSQL, and SQLite ≥ 3.24 for
development): Django's bulk_create(update_conflicts=True) would *set* the column to the new value, not add to it.

Where each series is counted, and why there:

- vendor calls and their latency: ConnectionCallLog.record (integrations/connections.py), beside the call's row,
  under the outcome the HTTP layer decided (an answer the caller expected is not a failure: integrations/http.py
  ExpectedAnswer);
- messages: members.messaging.finish, when a send's outcome is recorded (sent, skipped, failed, uncertain);
- points: annexcloud.flows.settle, when a points transaction is settled (applied or failed), and a reversed
  Bazaarvoice award's credit in the hour it was credited (bazaarvoice.flows.reverse_award), so points are net of it;
- job runs: integrations.job_runs, when a run ends or is closed as interrupted;
- vendors' own series (First Orion's pushed destinations, Bazaarvoice's settled reviews) where their flows settle;
- callbacks: a minute job (`roll_up_callbacks`) counts the stored webhook events from the raw rows by their indexed
  `received_at` only. Receiving must cost one insert before the 2xx (issue 22: the ingest bench at the bare
  insert's pace), and a delivery is stored in several places (stored, duplicate, rejected); a minute's delay in a
  chart costs nothing. It stays LAG behind the clock so that a row whose time was taken just before its insert
  committed is never skipped.

An event is counted once the caller's transaction commits (one rolled back is not), into this process's buffer,
written at most ROLLUP_FLUSH_SECONDS later (1 s; a timer), at the end of each job run and when the process stops:
every send thread of every worker adding to the same hour's row in its own statement made those rows the
message job's bottleneck (each waited for the others' row locks), and a statement a call. A process killed outright
loses at most that second's counts — they are statistics, not records. ROLLUP_FLUSH_SECONDS = 0 writes each event
at once (the test settings). The rows a statement touches are sorted by key, so two writers never take the same
rows' locks in opposite orders.
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connections, router, transaction
from django.db.models import Case, CharField, Count, Sum, Value, When
from django.db.models.functions import TruncHour
from django.utils import timezone

from integrations.http import CALL_OUTCOMES, FAILED, UNCERTAIN, CallRecord
from integrations.http import OK as OK  # "ok", as the other series name it too
from integrations.models import Connection, Rollup, RollupMark, WebhookEvent


class HourSums(TypedDict):
    """A row of window_sums(): one hour of one series and outcome; n and value are None for no row."""

    hour: datetime
    series: str
    outcome: str
    n: int | None
    value: int | None


class RunningTotal(TypedDict):
    """A row of all_time(): one series' running count and total for a client's connection and an outcome."""

    series: str
    client_pk: int
    connection_pk: int
    outcome: str
    count: int
    total: int


# The hour of the running totals since the start (the counters /metrics exports).
ALL_TIME = datetime(1970, 1, 1, tzinfo=UTC)

# Series names (vendors name their own, e.g. "first_orion_destinations").
CALLS = "vendor_calls"
LATENCY = "vendor_call_latency"
MESSAGES = "messages"
CALLBACKS = "callbacks"
POINTS = "points"
JOB_RUNS = "job_runs"

# Points outcomes: "<activity>:<status>" of a settled transaction, and a credit taken back (an award reversed),
# counted in the hour of the credit so that the hour's points awarded are net of it.
CREDIT_APPLIED = "credit:applied"
CREDIT_REVERSED = "credit:reversed"

# Upper bounds of the latency buckets in ms (Prometheus' `le`); a call slower than the last is in "+Inf".
LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
INF = "+Inf"


@dataclass(frozen=True)
class Tally:
    """`count` events of one series with `total` their summed value, for one client and connection (0: none)."""

    series: str
    outcome: str = ""
    client_pk: int = 0
    connection_pk: int = 0
    count: int = 1
    total: int = 0
    hour: datetime | None = None  # the event's hour; now when None

    def key(self, hour: datetime) -> tuple[datetime, str, int, int, str]:
        return (hour, self.series, self.client_pk, self.connection_pk, self.outcome)


# --- Counting ----------------------------------------------------------------------------------------------------


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


Key = tuple[datetime, str, int, int, str]
logger = logging.getLogger(__name__)


def summed(tallies: Iterable[Tally]) -> dict[Key, list[int]]:
    """The tallies by row: their hour's and the ALL_TIME row of each key, [count, total] each."""
    now_hour = hour_of(timezone.now())
    sums: dict[Key, list[int]] = {}
    for tally in tallies:
        hour = hour_of(tally.hour) if tally.hour else now_hour
        for key in (tally.key(hour), tally.key(ALL_TIME)):
            # One row at most once per statement: PostgreSQL refuses to update a row twice in one ON CONFLICT.
            counted = sums.setdefault(key, [0, 0])
            counted[0] += tally.count
            counted[1] += tally.total
    return sums


def add(tallies: Iterable[Tally]) -> None:
    """Add the tallies to their rows now, in one statement (history filled in bulk; events go through `record`)."""
    if sums := summed(tallies):
        upsert(sorted(sums.items()))


def record(tallies: Iterable[Tally]) -> None:
    """Events that just happened: counted when the caller's transaction commits, through this process's buffer."""
    sums = summed(tallies)
    if not sums:
        return
    if settings.ROLLUP_FLUSH_SECONDS <= 0:
        upsert(sorted(sums.items()))  # in the caller's transaction: rolled back with it
    else:
        transaction.on_commit(lambda: BUFFER.add(sums))


class Buffer:
    """This process's counts not yet written, written by a timer ROLLUP_FLUSH_SECONDS after the first of them."""

    def __init__(self) -> None:
        self.sums: dict[Key, list[int]] = {}
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def add(self, sums: dict[Key, list[int]]) -> None:
        with self.lock:
            for key, (n, total) in sums.items():
                counted = self.sums.setdefault(key, [0, 0])
                counted[0] += n
                counted[1] += total
            if self.timer is None:
                self.timer = threading.Timer(settings.ROLLUP_FLUSH_SECONDS, self.flush_from_timer)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        """Write what waits, in one statement; a database that cannot take it now keeps it for the next flush."""
        with self.lock:
            rows, self.sums = sorted(self.sums.items()), {}
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        if not rows:
            return
        try:
            upsert(rows)
        except (DatabaseError, InterfaceError):
            logger.warning("Could not write %d rollup rows now; they are kept for the next flush.", len(rows))
            self.add(dict(rows))

    def flush_from_timer(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()  # the timer thread's own database connection


BUFFER = Buffer()
flush = BUFFER.flush
atexit.register(flush)


def upsert(rows: list[tuple[tuple[datetime, str, int, int, str], list[int]]]) -> None:
    alias = router.db_for_write(Rollup)
    db = connections[alias]
    quote = db.ops.quote_name
    table = quote(Rollup._meta.db_table)
    key = ", ".join(quote(name) for name in ("hour", "series", "client_pk", "connection_pk", "outcome"))
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    count, total = quote("count"), quote("total")
    # Only quoted names and placeholders are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({key}, {count}, {total}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT ({key}) DO UPDATE SET {count} = {table}.{count} + excluded.{count}, "
        f"{total} = {table}.{total} + excluded.{total}"
    )
    params: list[Any] = []
    for (hour, series, client_pk, connection_pk, outcome), (n, summed) in rows:
        params += [db.ops.adapt_datetimefield_value(hour), series, client_pk, connection_pk, outcome, n, summed]
    with db.cursor() as cursor:
        cursor.execute(sql, params)


def counted(series: str, *, outcome: str = "", client_pk: int | None = 0, connection_pk: int | None = 0,
            count: int = 1, total: int = 0) -> None:  # fmt: skip
    """Count `count` events of a series now (a vendor's flow names its own series)."""
    if count:
        record([Tally(series, outcome, client_pk or 0, connection_pk or 0, count, total)])


def call_outcome(call: CallRecord) -> str:
    """How a call is counted: its outcome as the HTTP layer decided it (integrations/http.py CALL_OUTCOMES: "ok",
    "not_found" and "refused" for answers the caller expected, "failed", "uncertain"), a failure with its error's
    kind ("failed:rejected", "uncertain:timeout") for /metrics."""
    outcome = call.outcome
    return f"{outcome}:{call.error_type}" if outcome in (FAILED, UNCERTAIN) else outcome


def call_label(outcome: str) -> tuple[str, str]:
    """A counted call outcome as (outcome, error kind): ("failed", "timeout"), ("not_found", ""). Hours counted
    before calls had these outcomes hold "ok", an error's kind or "failed": read as failures."""
    label, _, kind = outcome.partition(":")
    if label in CALL_OUTCOMES:
        return label, kind
    return FAILED, "" if label == FAILED else label


def latency_bucket(latency_ms: int) -> str:
    return next((str(bound) for bound in LATENCY_BUCKETS_MS if latency_ms <= bound), INF)


def call_recorded(connection: Connection, call: CallRecord) -> None:
    """A vendor call: its outcome and its latency bucket (whose total is the calls' milliseconds)."""
    client_pk, connection_pk, latency = connection.client_id, connection.pk, call.latency_ms
    record(
        [
            Tally(CALLS, call_outcome(call), client_pk, connection_pk),
            Tally(LATENCY, latency_bucket(latency), client_pk, connection_pk, total=latency),
        ]
    )


# A message put back (pending) or still on its way has no outcome yet.
UNSETTLED_MESSAGE_STATUSES = frozenset({"pending", "claimed", "attempting"})


def message_settled(message: Any, status: str) -> None:
    """A send's outcome (sent, skipped, failed, uncertain). The member is loaded with the claimed message, so its
    client costs no query."""
    if status not in UNSETTLED_MESSAGE_STATUSES:
        counted(MESSAGES, outcome=status, client_pk=message.member.client_id, connection_pk=message.connection_id)


def points_settled(txn: Any) -> None:
    """A points transaction settled: outcome "credit:applied", "debit:failed", …; its total is the points."""
    counted(POINTS, outcome=f"{txn.activity}:{txn.status}", client_pk=txn.client_id, total=txn.points)


def credit_reversed(client_pk: int, points: int, credited_at: datetime) -> None:
    """An applied credit taken back (a Bazaarvoice award reversed): its points counted as CREDIT_REVERSED in the hour
    it was credited, which the dashboard subtracts from that hour's points awarded. The debit that takes them back
    is counted as any settled transaction ("debit:applied", now)."""
    record([Tally(POINTS, CREDIT_REVERSED, client_pk, total=points, hour=credited_at)])


def job_run_ended(run: Any) -> None:
    counted(JOB_RUNS, outcome=run.outcome, client_pk=run.client_id)


# --- The callbacks' minute job -----------------------------------------------------------------------------------

LAG = timedelta(minutes=2)
FIRST_LOOK_BACK = timedelta(days=7)  # a first run counts the dashboard's longest window
CHUNK = timedelta(hours=1)


def roll_up_callbacks(now: datetime | None = None) -> int:
    """Count the webhook events received since the last run (up to LAG ago), an hour of them per transaction;
    returns how many. The mark is locked while counting, so two runs at once never count a row twice."""
    until = (now or timezone.now()) - LAG
    rolled = 0
    while True:
        with transaction.atomic():
            mark = marked(CALLBACKS, until - FIRST_LOOK_BACK)
            if mark.counted_until >= until:
                return rolled
            end = min(until, mark.counted_until + CHUNK)
            rolled += count_callbacks(mark.counted_until, end)
            mark.counted_until = end
            mark.save(update_fields=["counted_until"])


def marked(series: str, start: datetime) -> RollupMark:
    RollupMark.objects.get_or_create(series=series, defaults={"counted_until": start})
    return RollupMark.objects.select_for_update().get(series=series)


def count_callbacks(start: datetime, end: datetime) -> int:
    """The deliveries received in [start, end) per hour, connection and outcome, by the indexed received_at only:
    "duplicate" and "rejected" are final when stored; any other is "stored" (its processing is not counted here)."""
    outcome = Case(
        When(status__in=["duplicate", "rejected"], then="status"), default=Value("stored"), output_field=CharField()
    )
    rows = (
        WebhookEvent.objects.filter(received_at__gte=start, received_at__lt=end)
        .order_by()
        .values(hour=TruncHour("received_at", tzinfo=UTC), kind=outcome)
        .annotate(n=Count("pk"))
        .values_list("hour", "kind", "connection_id", "connection__client_id", "n")
    )
    tallies = [Tally(CALLBACKS, kind, client, conn, n, hour=hour) for hour, kind, conn, client, n in rows]
    add(tallies)
    return sum(tally.count for tally in tallies)


# --- Reading -----------------------------------------------------------------------------------------------------


def window_sums(series: Collection[str], since: datetime, client_pks: Collection[int] | None) -> list[HourSums]:
    """Per hour, series and outcome from the hour of `since` on: n (events) and value (their total), of the given
    clients (None: all)."""
    rows = Rollup.objects.filter(hour__gte=hour_of(since), series__in=list(series))
    if client_pks is not None:
        rows = rows.filter(client_pk__in=list(client_pks))
    return list(rows.order_by().values("hour", "series", "outcome").annotate(n=Sum("count"), value=Sum("total")))


def all_time(series: Collection[str]) -> list[RunningTotal]:
    """The running totals of the series, per client, connection and outcome."""
    rows = Rollup.objects.filter(hour=ALL_TIME, series__in=list(series))
    return list(rows.values("series", "client_pk", "connection_pk", "outcome", "count", "total"))


def bucket_bound(outcome: str) -> float:
    return math.inf if outcome == INF else float(outcome)


def quantile(buckets: Mapping[str, float], q: float = 0.95) -> float:
    """The q-quantile of a latency histogram (counts per bucket, not cumulative), interpolated linearly within its
    bucket as Prometheus' histogram_quantile does; in the +Inf bucket it is the highest finite bound."""
    total = sum(buckets.values())
    if not total:
        return 0.0
    rank, below, lower = q * total, 0.0, 0.0
    for outcome in sorted(buckets, key=bucket_bound):
        bound, n = bucket_bound(outcome), buckets[outcome]
        if n and below + n >= rank:
            if math.isinf(bound):
                return float(LATENCY_BUCKETS_MS[-1])
            return lower + (bound - lower) * (rank - below) / n
        below += n
        lower = bound if not math.isinf(bound) else lower
    return lower


# --- Retention ---------------------------------------------------------------------------------------------------


RETENTION_DAYS = 400  # a year of charts and the same weeks of last year; ROLLUP_RETENTION_DAYS overrides


def prune(now: datetime) -> int:
    """Delete the hourly rows past the retention period (the ALL_TIME totals are kept: they are the counters).
    A few hundred rows an hour at most, so one statement is short."""
    cutoff = now - timedelta(days=getattr(settings, "ROLLUP_RETENTION_DAYS", RETENTION_DAYS))
    return Rollup.objects.filter(hour__lt=cutoff).exclude(hour=ALL_TIME).delete()[0]
