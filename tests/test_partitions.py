"""Daily partitions on PostgreSQL (issue 22): retention drops a day of vendor calls or webhook events whole when all
of it is past its period and none of it still needed, keeps a day that holds an unprocessed delivery (pruned row by
row), dedup of deliveries stays exact across days, and an insert never fails for a missing day. SQLite keeps plain
tables and prunes them row by row as before."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import partitions, retention
from integrations.models import VendorCall, WebhookEvent
from portal.admin_paging import planner_estimate
from tests.factories import WebhookEventFactory

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif("db.vendor != 'postgresql'", reason="partitions are PostgreSQL's")
Status = WebhookEvent.Status


@pytest.fixture(autouse=True)
def periods(settings):
    settings.VENDOR_CALL_RETENTION_DAYS = 30
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 30


def noon(days_ago: int) -> datetime:
    """Midday (UTC) of a day that many days back: well inside that day's partition."""
    day = timezone.now().astimezone(UTC).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(12), tzinfo=UTC)


def day_partition(model, days_ago: int) -> str:
    """That day's partition of the model's table, made for the test (the migration makes only recent days)."""
    day = noon(days_ago).date()
    partitions.ensure_day(model, day)
    return partitions.Day(model._meta.db_table, day).name


def exists(table: str) -> bool:
    with db.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


def rows_in(table: str) -> int:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {db.ops.quote_name(table)}")
        return cursor.fetchone()[0]


def call(connection, moment: datetime) -> VendorCall:
    return VendorCall.objects.create(connection=connection, method="GET", url="/v1/x", created_at=moment)


@postgresql_only
def test_a_day_past_retention_goes_as_a_partition(connection_a):
    calls_day, events_day = day_partition(VendorCall, 40), day_partition(WebhookEvent, 40)
    for _ in range(3):
        call(connection_a, noon(40))
    done = [WebhookEventFactory(status=status, received_at=noon(40)) for status in retention.DONE_WEBHOOK_STATUSES]
    recent = call(connection_a, noon(1))
    assert rows_in(calls_day) == 3 and rows_in(events_day) == len(done)

    counts = retention.prune_old_records()

    assert not exists(calls_day) and not exists(events_day)  # dropped whole: no row-by-row delete of the day
    assert (counts["vendor_calls"], counts["webhook_events"]) == (3, len(done))
    assert list(VendorCall.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not WebhookEvent.objects.exists()


@postgresql_only
@pytest.mark.parametrize("waiting", [Status.RECEIVED, Status.FAILED])
def test_a_day_holding_an_unprocessed_event_is_not_dropped_and_its_done_events_go_one_by_one(waiting):
    events_day = day_partition(WebhookEvent, 40)
    kept = WebhookEventFactory(status=waiting, received_at=noon(40))
    done = WebhookEventFactory(status=Status.PROCESSED, received_at=noon(40))

    counts = retention.prune_old_records()

    assert exists(events_day)
    assert counts["webhook_events"] == 1
    assert list(WebhookEvent.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not WebhookEvent.objects.filter(pk=done.pk).exists()


@postgresql_only
def test_a_day_not_yet_past_retention_stays(connection_a):
    calls_day = day_partition(VendorCall, 29)
    call(connection_a, noon(29))
    assert retention.prune_old_records()["vendor_calls"] == 0
    assert exists(calls_day) and rows_in(calls_day) == 1


@postgresql_only
def test_dedup_of_a_delivery_holds_across_days_and_a_dropped_day_releases_its_keys(connection_a):
    day_partition(WebhookEvent, 40)
    first = WebhookEventFactory(
        connection=connection_a, event_id="ev-1", event_type="t", status=Status.PROCESSED, received_at=noon(40)
    )
    # The same event today (another partition) is stored as the duplicate it is, by the INSERT that brings it.
    again = WebhookEventFactory(connection=connection_a, event_id="ev-1", event_type="t")
    assert again.status == Status.DUPLICATE  # as the INSERT returned it
    again.refresh_from_db()
    assert (again.status, again.event_id, again.processed_at is not None) == (Status.DUPLICATE, None, True)
    other = WebhookEventFactory(connection=connection_a, event_id="ev-1", event_type="other")  # another type: new
    assert other.status == Status.RECEIVED

    retention.prune_old_records()

    assert not WebhookEvent.objects.filter(pk=first.pk).exists()
    # Past retention it is gone, key and all, as a row-by-row prune would leave it: a new delivery of it is new.
    assert WebhookEventFactory(connection=connection_a, event_id="ev-1", event_type="t").status == Status.RECEIVED


@postgresql_only
def test_an_insert_for_a_day_without_partition_lands_in_the_default_one_and_goes_row_by_row(connection_a):
    far = call(connection_a, noon(400))
    assert rows_in("integrations_vendorcall_default") == 1
    assert not partitions.ensure_day(VendorCall, noon(400).date())  # its rows went to the default: no day made
    assert retention.prune_old_records()["vendor_calls"] == 1
    assert not VendorCall.objects.filter(pk=far.pk).exists()


@postgresql_only
def test_the_prune_job_makes_the_days_ahead(settings):
    settings.PARTITION_DAYS_AHEAD = 3
    ahead = partitions.Day("integrations_vendorcall", noon(-3).date()).name
    with db.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {ahead}")
    retention.prune_old_records()
    assert exists(ahead)


@pytest.mark.skipif("db.vendor == 'postgresql'", reason="SQLite's plain tables")
def test_sqlite_keeps_plain_tables_pruned_row_by_row(connection_a):
    assert not any(partitions.is_partitioned(model) for model in partitions.partitioned_models())
    old, recent = call(connection_a, noon(40)), call(connection_a, noon(1))
    assert retention.prune_old_records()["vendor_calls"] == 1
    assert list(VendorCall.objects.values_list("pk", flat=True)) == [recent.pk] != [old.pk]


def test_calls_left_after_the_days_dropped_go_in_batches_of_their_time_index(connection_a):
    """The call log has no index on its id on PostgreSQL: what a drop leaves goes oldest first in time-bounded
    batches, rows sharing one moment included, and nothing newer than the cutoff."""
    tied = noon(45)
    old = [call(connection_a, noon(40 + n)) for n in range(3)] + [call(connection_a, tied) for _ in range(3)]
    recent = call(connection_a, noon(1))
    with CaptureQueriesContext(db) as queries:
        deleted = retention.prune_by_time(VendorCall.objects.all(), "created_at", noon(30), batch_size=2)
    assert deleted == len(old)
    assert list(VendorCall.objects.values_list("pk", flat=True)) == [recent.pk]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) >= 3 and all('"created_at" <' in sql or '"created_at" =' in sql for sql in deletes), deletes
    assert all(" IN (" not in sql and '"id"' not in sql for sql in deletes)  # a time range, no key read first


@postgresql_only
def test_the_lists_estimate_of_a_partitioned_table_is_its_days_estimates(connection_a):
    """Autovacuum analyses each day's partition, never the partitioned table: the list's "about N" adds them up."""
    today = day_partition(VendorCall, 0)
    for _ in range(3):
        call(connection_a, noon(0))
    with db.cursor() as cursor:
        cursor.execute(f"ANALYZE {today}")
    assert planner_estimate(VendorCall.objects.all()) == 3
