"""Retention of every growing table (issue 22): what goes after each table's period, what is never pruned (an
unprocessed delivery, a message still in flight or uncertain, points transactions, audit entries), deletion in
primary-key ranges, and the per-table counts on the Jobs page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import retention
from integrations.job_runs import run_job
from integrations.models import AuditEntry, JobRun, VendorCall, WebhookEvent
from integrations.sessionm.models import SessionMOffer
from members.models import LoyaltyEvent, OutboundMessage, PointsTransaction
from tests.factories import LoyaltyEventFactory, MemberFactory, OutboundMessageFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db

Status = OutboundMessage.Status


@pytest.fixture(autouse=True)
def periods(settings):
    settings.VENDOR_CALL_RETENTION_DAYS = 30
    settings.JOB_RUN_RETENTION_DAYS = 30
    settings.WEBHOOK_EVENT_RETENTION_DAYS = 30
    settings.OUTBOUND_MESSAGE_RETENTION_DAYS = 90
    settings.LOYALTY_EVENT_RETENTION_DAYS = 30


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def test_webhook_events_go_once_done_but_an_unprocessed_or_failed_delivery_stays():
    old = days_ago(31)
    gone = [WebhookEventFactory(status=status, received_at=old) for status in retention.DONE_WEBHOOK_STATUSES]
    kept = [
        WebhookEventFactory(status=WebhookEvent.Status.RECEIVED, received_at=days_ago(400)),
        WebhookEventFactory(status=WebhookEvent.Status.FAILED, received_at=old),
        WebhookEventFactory(status=WebhookEvent.Status.PROCESSED, received_at=days_ago(29)),
    ]
    counts = retention.prune_old_records()
    assert counts["webhook_events"] == len(gone) == 4
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {event.pk for event in kept}


def message_created(status: str, days: int, **kwargs) -> OutboundMessage:
    message = OutboundMessageFactory(status=status, **kwargs)
    OutboundMessage.objects.filter(pk=message.pk).update(created_at=days_ago(days))  # auto_now_add
    return message


def test_settled_messages_go_after_their_period_and_one_in_flight_or_uncertain_never():
    gone = [message_created(status, 91) for status in (Status.SENT, Status.SKIPPED, Status.FAILED)]
    in_flight = [message_created(status, 400) for status in (Status.PENDING, Status.CLAIMED, Status.ATTEMPTING)]
    uncertain = message_created(Status.UNCERTAIN, 400)
    recent = message_created(Status.SENT, 89)
    assert retention.prune_old_records()["outbound_messages"] == len(gone)
    assert set(OutboundMessage.objects.values_list("pk", flat=True)) == {m.pk for m in [*in_flight, uncertain, recent]}


def planned_event(days: int, **kwargs) -> LoyaltyEvent:
    return LoyaltyEventFactory(messages_planned_at=days_ago(days), **kwargs)


def test_a_loyalty_event_goes_once_planned_and_its_messages_have_gone():
    member = MemberFactory()
    no_messages = planned_event(31, member=member)
    settled = message_created(Status.SENT, 91, event=planned_event(100, member=member))
    uncertain = message_created(Status.UNCERTAIN, 100, event=planned_event(100, member=member))
    recent_message = message_created(Status.SENT, 40, event=planned_event(40, member=member))
    unplanned = LoyaltyEventFactory(member=member)
    LoyaltyEvent.objects.filter(pk=unplanned.pk).update(received_at=days_ago(100))
    recent = planned_event(29, member=member)

    counts = retention.prune_old_records()

    assert (counts["outbound_messages"], counts["loyalty_events"]) == (1, 2)
    assert not LoyaltyEvent.objects.filter(pk__in=[no_messages.pk, settled.event_id]).exists()
    # Kept: the evidence of an uncertain message, a message still within its period, and events not yet planned.
    kept = {uncertain.event_id, recent_message.event_id, unplanned.pk, recent.pk}
    assert set(LoyaltyEvent.objects.values_list("pk", flat=True)) == kept


def test_a_live_sessionm_offers_expiring_event_is_kept_until_the_offer_ends():
    """SessionM's wallet scan makes an offer's "expiring" event only while the offer's link to it is empty: pruning
    it while the offer is live would announce the expiry again (the vendor's retention hook keeps it)."""
    member = MemberFactory()
    live, ended = planned_event(31, member=member), planned_event(31, member=member)
    for offer_id, event, end in (("live", live, timezone.now() + timedelta(days=1)), ("ended", ended, days_ago(1))):
        SessionMOffer.objects.create(
            client=member.client, member=member, offer_id=offer_id, redemption_end_date=end, expiring_event=event
        )

    assert retention.prune_old_records()["loyalty_events"] == 1
    assert list(LoyaltyEvent.objects.values_list("pk", flat=True)) == [live.pk]


def test_points_transactions_and_audit_entries_are_kept(client_a):
    member = MemberFactory(client=client_a)
    points = PointsTransaction.objects.create(
        client=client_a, member=member, key="k1", activity="credit", points=5, action_id="a"
    )
    PointsTransaction.objects.filter(pk=points.pk).update(created_at=days_ago(4000))
    entry = AuditEntry.objects.create(actor_name="ann", action="changed", subject_type="client", subject="x")
    AuditEntry.objects.filter(pk=entry.pk).update(at=days_ago(4000))
    retention.prune_old_records()
    assert PointsTransaction.objects.filter(pk=points.pk).exists() and AuditEntry.objects.filter(pk=entry.pk).exists()


def test_rows_go_in_primary_key_ranges_and_an_old_row_written_late_goes_too(connection_a):
    def call(days: int) -> VendorCall:
        return VendorCall.objects.create(
            connection=connection_a, method="GET", url="https://x/", created_at=days_ago(days)
        )

    old = [call(40 + n) for n in range(5)]
    recent = [call(1), call(2)]
    # Written after newer rows and older than every other old row: its key is above the newest old row's.
    late = [call(60), call(35), call(70)]
    with CaptureQueriesContext(db) as queries:
        deleted = retention.prune(VendorCall.objects.all(), "created_at", days_ago(30), batch_size=2)
    assert deleted == len(old) + len(late)
    assert set(VendorCall.objects.values_list("pk", flat=True)) == {row.pk for row in recent}
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert deletes and all(re.search(r'"id" >= \S+ AND .*"id" < ', sql) for sql in deletes), deletes
    assert all(" IN (" not in sql for sql in deletes)  # a key range, not a list of keys read first


def test_the_prune_job_counts_each_table_and_the_jobs_page_shows_them(admin_http, connection_a):
    VendorCall.objects.create(connection=connection_a, method="GET", url="https://x/", created_at=days_ago(31))
    WebhookEventFactory(status=WebhookEvent.Status.PROCESSED, received_at=days_ago(31))
    message_created(Status.SENT, 91)
    run = run_job("integrations.prune_old_records", retention.prune_old_records)
    assert run.counts == {
        "vendor_calls": 1,
        "job_runs": 0,
        "webhook_events": 1,
        "outbound_messages": 1,
        "loyalty_events": 0,  # its event was never planned
        "member_changes": 0,
        "member_actions": 0,
        "rollups": 0,
        "first_orion_pushes": 0,  # First Orion's own (its retention module)
    }
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", admin_http.get("/admin/jobs/").content.decode()))
    prune_row = page.split("Prune old records", 1)[1].split("Run now", 1)[0]
    # Each table's count (PostgreSQL's jsonb orders the keys its own way).
    counts = ("1 vendor call", "0 job runs", "1 webhook event", "1 outbound message", "0 loyalty events")
    for count in (*counts, "0 member changes"):
        assert re.search(rf"\b{count}\b(?!s)", prune_row), count  # "1 vendor call", never "1 vendor calls"
    assert JobRun.objects.filter(job="integrations.prune_old_records", outcome=JobRun.Outcome.SUCCEEDED).exists()
