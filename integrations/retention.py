"""Retention of the portal's own records: every table that grows with traffic is pruned nightly, each after its own
setting, and only of rows nobody needs any more.

- vendor calls (VENDOR_CALL_RETENTION_DAYS) and job runs (JOB_RUN_RETENTION_DAYS): all of them past the period;
- webhook events (WEBHOOK_EVENT_RETENTION_DAYS): processed, duplicate, rejected and ignored deliveries. A `received`
  one was never applied and a `failed` one waits to be reprocessed: both are kept;
- outbound messages (OUTBOUND_MESSAGE_RETENTION_DAYS): settled ones (sent, skipped, failed, stopped). Pending,
  claimed and attempting ones are still being worked on, and an `uncertain` one is the evidence an admin needs to
  decide whether the member got it: all kept;
- loyalty events (LOYALTY_EVENT_RETENTION_DAYS): whose messages were planned and have all gone (pruned as settled
  above, or there were none), so an event is kept as long as any of its messages is;
- member changes and actions (MEMBER_CHANGE_RETENTION_DAYS): who changed a member through the API, an import, a
  callback or a job, and the one-off actions done for a member at a vendor, for the member's timeline.

Each vendor prunes its own records too (its retention module's `prune_records`): First Orion's finished pushes.

Points transactions and audit entries are kept: they are the record of money-like changes and of people's edits.

Rows go in batches of primary-key ranges, found through each table's indexed time column, so no statement holds a
large table for long. On PostgreSQL the vendor calls and webhook events are partitioned by day
(integrations/partitions.py): a day whose rows are all past the period, none of them still needed by the rules above,
goes whole (one DROP TABLE); what is left (the day the cutoff falls in, a day that holds a needed row, the DEFAULT
partition) is pruned row by row here, as on SQLite. The call log has no index on its id there (bytes on every call),
so its remaining rows go in batches of its time index instead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from integrations import partitions, rollups
from integrations.hooks import HoldsLoyaltyEvents, PrunesRecords, hooks
from integrations.models import JobRun, VendorCall, WebhookEvent
from members.models import LoyaltyEvent, MemberAction, MemberChange, OutboundMessage

BATCH_SIZE = 5000

DONE_WEBHOOK_STATUSES = [
    WebhookEvent.Status.PROCESSED,
    WebhookEvent.Status.DUPLICATE,
    WebhookEvent.Status.REJECTED,
    WebhookEvent.Status.IGNORED,
]
# "stopped" is named for a message a run gave up on for good; it is settled whenever a status of that name exists.
SETTLED_MESSAGE_STATUSES = [
    OutboundMessage.Status.SENT,
    OutboundMessage.Status.SKIPPED,
    OutboundMessage.Status.FAILED,
    "stopped",
]


def prune_old_records(older_than_days: int | None = None) -> dict[str, int]:
    """Delete what each table no longer needs (see the module's docstring); the counts per table are the job's
    counts on the Jobs page. `older_than_days` overrides every table's period (a manual clean-up)."""
    now = timezone.now()

    def cutoff(setting: str) -> datetime:
        return days_ago(getattr(settings, setting))

    def days_ago(days: int) -> datetime:
        return now - timedelta(days=days if older_than_days is None else older_than_days)

    partitions.ensure_ahead()  # PostgreSQL: the days ahead exist before their rows arrive
    # Messages before events: an event goes only once its messages have.
    return {
        "vendor_calls": prune_vendor_calls(cutoff("VENDOR_CALL_RETENTION_DAYS")),
        "job_runs": prune(JobRun.objects.all(), "started_at", cutoff("JOB_RUN_RETENTION_DAYS")),
        "webhook_events": prune_webhook_events(cutoff("WEBHOOK_EVENT_RETENTION_DAYS")),
        "outbound_messages": prune(
            OutboundMessage.objects.filter(status__in=SETTLED_MESSAGE_STATUSES),
            "created_at",
            cutoff("OUTBOUND_MESSAGE_RETENTION_DAYS"),
        ),
        "loyalty_events": prune(
            prunable_loyalty_events(now), "messages_planned_at", cutoff("LOYALTY_EVENT_RETENTION_DAYS")
        ),
        "member_changes": prune(MemberChange.objects.all(), "changed_at", cutoff("MEMBER_CHANGE_RETENTION_DAYS")),
        "member_actions": prune(MemberAction.objects.all(), "done_at", cutoff("MEMBER_CHANGE_RETENTION_DAYS")),
        "rollups": rollups.prune(now),  # its own period (ROLLUP_RETENTION_DAYS, 400 days): the charts' history
        # Each vendor's own records (its retention module), each after its own setting.
        **{name: n for vendor in hooks(PrunesRecords).values() for name, n in vendor.prune_records(days_ago).items()},
    }


def prune_vendor_calls(cutoff: datetime) -> int:
    """Every call before the cutoff: whole days first (PostgreSQL), then the rest."""
    dropped = partitions.drop_days_before(VendorCall, cutoff)
    if partitions.is_partitioned(VendorCall):
        return dropped + prune_by_time(VendorCall.objects.all(), "created_at", cutoff)
    return dropped + prune(VendorCall.objects.all(), "created_at", cutoff)


def prune_webhook_events(cutoff: datetime) -> int:
    """Done deliveries before the cutoff: whole days that hold no waiting or failed one first (PostgreSQL), then the
    done ones of the days left."""
    done = Q(status__in=DONE_WEBHOOK_STATUSES)
    dropped = partitions.drop_days_before(WebhookEvent, cutoff, needed=~done)
    return dropped + prune(WebhookEvent.objects.filter(done), "received_at", cutoff)


def prunable_loyalty_events(now: datetime) -> QuerySet[LoyaltyEvent]:
    """Planned events with no message left, except those a vendor's records still point to (e.g. a live SessionM
    offer's "expiring" event)."""
    prunable = LoyaltyEvent.objects.filter(messages_planned_at__isnull=False).exclude(
        Exists(OutboundMessage.objects.filter(event=OuterRef("pk")))
    )
    for vendor in hooks(HoldsLoyaltyEvents).values():
        prunable = prunable.exclude(vendor.loyalty_events_in_use(now))
    return prunable


def prune(prunable: QuerySet[Any], time_field: str, cutoff: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete the rows of `prunable` whose `time_field` is before `cutoff`, one primary-key range at a time.

    The highest key to reach is the key of the newest prunable row before the cutoff (one probe of the time
    column's index). Keys follow time for rows the portal writes, but not strictly (a row's time is taken just
    before its insert), so once that key is reached the probe is repeated above it until no prunable old row is
    left: the rows already deleted no longer get in the probe's way, so each repeat is cheap."""
    old = prunable.filter(**{f"{time_field}__lt": cutoff})
    deleted, reached = 0, None
    while (top := newest_key(old, time_field, above=reached)) is not None:
        for low, high in key_ranges(prunable.model.objects.all(), above=reached, up_to=top, size=batch_size):
            deleted += rows_of_its_own(old.filter(pk__gte=low, pk__lt=high))
        reached = top
    return deleted


def prune_by_time(prunable: QuerySet[Any], time_field: str, cutoff: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete the rows of `prunable` before `cutoff` oldest first, `batch_size` at a time, each batch bounded by the
    time of the row after it (one probe of the time index), for a table with no index on its key."""
    old = prunable.filter(**{f"{time_field}__lt": cutoff})
    deleted = 0
    while next_batch := list(old.order_by(time_field).values_list(time_field, flat=True)[batch_size : batch_size + 1]):
        boundary = next_batch[0]
        # Rows sharing the boundary's time go with the next batch; a batch of them alone goes with its time.
        deleted += (
            old.filter(**{f"{time_field}__lt": boundary}).delete()[0]
            or (old.filter(**{time_field: boundary}).delete()[0])
        )
    return deleted + old.delete()[0]


def rows_of_its_own(rows: QuerySet[Any]) -> int:
    """Delete `rows`; how many of them went (not counting the rows of other tables deleted with them, e.g. a push's
    batches)."""
    return rows.delete()[1].get(rows.model._meta.label, 0)


def newest_key(old: QuerySet[Any], time_field: str, above: int | None) -> int | None:
    rows = old if above is None else old.filter(pk__gt=above)
    return rows.order_by(f"-{time_field}", "-pk").values_list("pk", flat=True).first()


def key_ranges(rows: QuerySet[Any], above: int | None, up_to: int, size: int) -> Iterator[tuple[int, int]]:
    """Half-open ranges [low, low + size) covering the keys present in (above, up_to]; each range starts at a key
    that exists, so the gaps that earlier prunes left cost nothing."""
    low = first_key(rows, at_least=None if above is None else above + 1)
    while low is not None and low <= up_to:
        high = min(low + size, up_to + 1)
        yield low, high
        low = first_key(rows, at_least=high)


def first_key(rows: QuerySet[Any], at_least: int | None) -> int | None:
    if at_least is not None:
        rows = rows.filter(pk__gte=at_least)
    return rows.order_by("pk").values_list("pk", flat=True).first()
