"""Retention of the portal's own records: every table that grows with traffic is pruned nightly, each after its own
setting, and only of rows nobody needs any more.

- vendor calls (VENDOR_CALL_RETENTION_DAYS) and job runs (JOB_RUN_RETENTION_DAYS): all of them past the period;
- webhook events (WEBHOOK_EVENT_RETENTION_DAYS): processed, duplicate, rejected and ignored deliveries. A `received`
  one was never applied and a `failed` one waits to be reprocessed: both are kept;
- outbound messages (OUTBOUND_MESSAGE_RETENTION_DAYS): settled ones (sent, skipped, failed, stopped). Pending,
  claimed and attempting ones are still being worked on, and an `uncertain` one is the evidence an admin needs to
  decide whether the member got it: all kept;
- loyalty events (LOYALTY_EVENT_RETENTION_DAYS): whose messages were planned and have all gone (pruned as settled
  above, or there were none), so an event is kept as long as any of its messages is.

Points transactions and audit entries are kept: they are the record of money-like changes and of people's edits.

Rows go in batches of primary-key ranges, found through each table's indexed time column, so no statement holds a
large table for long. On PostgreSQL at production volume, dropping whole daily partitions is the later step (see the
README); this module stays the way for SQLite and for the rows a partition drop must not take."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from integrations import rollups
from integrations.models import JobRun, VendorCall, WebhookEvent
from integrations.sessionm.models import SessionMOffer
from members.models import LoyaltyEvent, OutboundMessage

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
        days = getattr(settings, setting) if older_than_days is None else older_than_days
        return now - timedelta(days=days)

    # Messages before events: an event goes only once its messages have.
    return {
        "vendor_calls": prune(VendorCall.objects.all(), "created_at", cutoff("VENDOR_CALL_RETENTION_DAYS")),
        "job_runs": prune(JobRun.objects.all(), "started_at", cutoff("JOB_RUN_RETENTION_DAYS")),
        "webhook_events": prune(
            WebhookEvent.objects.filter(status__in=DONE_WEBHOOK_STATUSES),
            "received_at",
            cutoff("WEBHOOK_EVENT_RETENTION_DAYS"),
        ),
        "outbound_messages": prune(
            OutboundMessage.objects.filter(status__in=SETTLED_MESSAGE_STATUSES),
            "created_at",
            cutoff("OUTBOUND_MESSAGE_RETENTION_DAYS"),
        ),
        "loyalty_events": prune(
            prunable_loyalty_events(now), "messages_planned_at", cutoff("LOYALTY_EVENT_RETENTION_DAYS")
        ),
        "rollups": rollups.prune(now),  # its own period (ROLLUP_RETENTION_DAYS, 400 days): the charts' history
    }


def prunable_loyalty_events(now: datetime) -> QuerySet[LoyaltyEvent]:
    """Planned events with no message left. An event a live SessionM offer still points to as its "expiring" event
    is kept too: SessionM's wallet scan makes that event only while the link is empty, so pruning it early would
    announce the offer's expiry a second time."""
    live_offer_link = SessionMOffer.objects.filter(expiring_event=OuterRef("pk"), redemption_end_date__gte=now)
    return (
        LoyaltyEvent.objects.filter(messages_planned_at__isnull=False)
        .exclude(Exists(OutboundMessage.objects.filter(event=OuterRef("pk"))))
        .exclude(Exists(live_offer_link))
    )


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
            deleted += old.filter(pk__gte=low, pk__lt=high).delete()[0]
        reached = top
    return deleted


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
