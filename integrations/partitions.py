"""Daily partitions of the vendor calls and the webhook events on PostgreSQL (issue 22); SQLite keeps plain tables
and everything here does nothing there.

Migration 0016 partitions each table by range of its time column, one partition per UTC day
(`<table>_pYYYYMMDD`) and a DEFAULT partition that takes any row whose day has none, so an insert never fails. The
nightly prune job (integrations/retention.py) makes the days ahead (PARTITION_DAYS_AHEAD) and drops a day whose rows
are all past retention and none still needed, in one `DROP TABLE` instead of millions of deleted rows and their
vacuum. A day that still holds a needed row (a webhook event not yet applied) stays and is pruned row by row.

A day whose rows already went to the DEFAULT partition (the job did not run for longer than the days it makes ahead)
is not made afterwards: PostgreSQL would refuse it; those rows stay in the DEFAULT partition, pruned row by row."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

# How long the drop of a day may wait for its table's lock (queries reading the log): a busy moment skips the day,
# the next night drops it, rather than inserts queueing behind the drop.
DROP_LOCK_TIMEOUT = "5s"
DAY_SUFFIX = re.compile(r"_p(\d{8})$")


@dataclass(frozen=True, order=True)
class Day:
    """One day's partition of a table: the rows with start <= time < end."""

    table: str
    day: date

    @property
    def name(self) -> str:
        return f"{self.table}_p{self.day:%Y%m%d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=1)


def time_field(model: type[models.Model]) -> str:
    """The column a partitioned table is partitioned on (the one its retention and its log order use)."""
    from integrations.models import VendorCall, WebhookEvent

    return {VendorCall: "created_at", WebhookEvent: "received_at"}[model]


def partitioned_models() -> list[type[models.Model]]:
    from integrations.models import VendorCall, WebhookEvent

    return [VendorCall, WebhookEvent]


def is_partitioned(model: type[models.Model], using: str = DEFAULT_DB_ALIAS) -> bool:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        return bool(cursor.fetchone()[0])


def days(model: type[models.Model], using: str = DEFAULT_DB_ALIAS) -> list[Day]:
    """The table's day partitions, oldest first (the DEFAULT partition is not one)."""
    connection = connections[using]
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = to_regclass(%s)",
            [connection.ops.quote_name(table)],
        )
        names = [name for (name,) in cursor.fetchall()]
    found = [DAY_SUFFIX.search(name) for name in names]
    return sorted(Day(table, datetime.strptime(m.group(1), "%Y%m%d").date()) for m in found if m)


def ensure_day(model: type[models.Model], day: date, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Make the day's partition unless it exists (or its rows already went to the DEFAULT partition); returns
    whether it was made. The database function is migration 0016's."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT portal_ensure_day_partition(%s, %s, %s)", [model._meta.db_table, time_field(model), day])
        return bool(cursor.fetchone()[0])


def ensure_ahead(days_ahead: int | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Today's partition and the next days' of every partitioned table (PARTITION_DAYS_AHEAD); returns how many
    were made. Run by the nightly prune job and after every migrate."""
    ahead = settings.PARTITION_DAYS_AHEAD if days_ahead is None else days_ahead
    today = timezone.now().astimezone(UTC).date()
    made = 0
    for model in partitioned_models():
        if is_partitioned(model, using):
            made += sum(ensure_day(model, today + timedelta(days=n), using) for n in range(ahead + 1))
    return made


def drop_days_before(model: type[models.Model], cutoff: datetime, needed: Q | None = None) -> int:
    """Drop each day partition that ends at or before `cutoff` and holds no row matching `needed` (a row retention
    keeps whatever its age); returns how many rows went. Nothing on a table that is not partitioned."""
    if not is_partitioned(model):
        return 0
    dropped = 0
    for day in days(model):
        if day.end > cutoff:
            break
        rows = model._default_manager.filter(
            **{f"{time_field(model)}__gte": day.start, f"{time_field(model)}__lt": day.end}
        )
        if needed is not None and rows.filter(needed).exists():
            continue  # handled row by row (integrations/retention.py)
        count = rows.count()  # before the lock: an old day gets no new rows, and the count is the Jobs page's
        if drop(model, day, None if needed is None else rows.filter(needed)):
            dropped += count
            released_with(model, day)
    return dropped


def drop(model: type[models.Model], day: Day, still_needed: models.QuerySet | None) -> bool:
    """DROP the day's partition under the table's lock, after checking again that nothing it holds is needed (a
    reprocessed event turns `received` again); False when that check or the lock's wait says not now."""
    connection = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            cursor.execute(f"LOCK TABLE {quote(model._meta.db_table)} IN ACCESS EXCLUSIVE MODE")
            if still_needed is not None and still_needed.exists():
                return False
            # Foreign keys are checked at commit: rows written earlier in this transaction (a test's) would
            # leave checks pending on the table, which PostgreSQL will not drop. Run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"DROP TABLE {quote(day.name)}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    except OperationalError as exc:
        logger.warning("Partition %s was busy (%s); it is dropped on a later run.", day.name, exc)
        return False
    return True


def released_with(model: type[models.Model], day: Day) -> None:
    """A dropped day of webhook events releases its events' dedup keys (migration 0016's key table): a DROP runs
    no row trigger. Exact, since every key of that day's time range is one of that day's events."""
    from integrations.models import WebhookEvent

    if model is not WebhookEvent:
        return
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "DELETE FROM integrations_webhookevent_key WHERE received_at >= %s AND received_at < %s",
            [day.start, day.end],
        )
