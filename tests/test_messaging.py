"""Loyalty-action messages: one per (event, template), only to TEXT subscribers, never twice — even with two runs
at once or a run killed halfway — and a rejected legacy token becomes Attentive's documented instruction (ask
legacyapi@attentivemobile.com to activate it) on the connection."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations import http, ratelimit, rollups
from integrations.http import Unavailable
from integrations.models import Connection, JobRun, Rollup
from members.messaging import (
    INTERRUPTED_DETAIL,
    SendRun,
    TakenBack,
    claim_batch,
    claim_lease,
    dispatch_messages,
    finish,
    mark_attempting,
    plan_messages,
    record_patiently,
    send_pending,
    settle_interrupted_sends,
)
from members.models import ChannelSubscription, LoyaltyEvent, Member, MessageTemplate, OutboundMessage
from members.tasks import dispatch_loyalty_messages
from tests.factories import ConnectionFactory, LoyaltyEventFactory, MemberFactory, MessageTemplateFactory
from tests.meanwhile import at_query, statement

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def setup(sandbox_attentive_connection, client_a):
    template = MessageTemplateFactory(
        client=client_a,
        event_type="points_earned",
        connection=sandbox_attentive_connection,
        text="Hi {first_name}, you earned {points} points at {client_name}!",
    )
    members = [MemberFactory(client=client_a, phone=f"+1770765{1750 + n}", first_name=f"M{n}") for n in range(4)]
    for member in members[:3]:  # the fourth is not subscribed to TEXT
        ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    events = [
        LoyaltyEventFactory(
            client=client_a, member=m, external_id=f"ev-{m.pk}", event_type="points_earned", data={"points": 50}
        )
        for m in members
    ]
    return {"connection": sandbox_attentive_connection, "template": template, "members": members, "events": events}


def test_the_job_sends_to_subscribers_and_skips_the_rest(setup, attentive_sandbox):
    counts = dispatch_loyalty_messages.apply().get()
    assert counts == {
        "planned": 4, "sent": 3, "skipped": 1, "failed": 0, "uncertain": 0, "interrupted": 0, "returned": 0,
        "stopped": 0, "held": 0,
    }  # fmt: skip
    assert attentive_sandbox.messages[0]["body"] == "Hi M0, you earned 50 points at Alpha Apparel!"
    assert sorted(m["to"] for m in attentive_sandbox.messages) == sorted(m.phone for m in setup["members"][:3])
    run = JobRun.objects.get(job="members.dispatch_loyalty_messages")
    assert run.outcome == "succeeded" and run.counts["sent"] == 3
    # Running again sends nothing new.
    assert dispatch_messages()["sent"] == 0
    assert len(attentive_sandbox.messages) == 3


def test_one_message_per_event_and_template_even_if_planned_twice(setup):
    plan_messages()
    LoyaltyEvent.objects.update(messages_planned_at=None)  # as if a killed run had not recorded the planning
    plan_messages()
    assert OutboundMessage.objects.count() == 4


def test_two_runs_never_claim_the_same_message(setup):
    plan_messages()
    first, second = claim_batch(setup["connection"]), claim_batch(setup["connection"])
    assert len(first) == 4 and second == []


def test_a_message_claimed_by_a_killed_run_goes_back_and_is_sent_once(setup, attentive_sandbox):
    plan_messages()
    claimed = claim_batch(setup["connection"], size=1)  # the run dies here, after claiming, before sending
    OutboundMessage.objects.filter(pk=claimed[0].pk).update(claimed_at=timezone.now() - timedelta(minutes=2))
    counts = dispatch_messages()
    assert counts["returned"] == 1 and counts["sent"] == 3
    assert OutboundMessage.objects.get(pk=claimed[0].pk).status == "sent"
    assert [m["to"] for m in attentive_sandbox.messages].count(claimed[0].to) == 1


def test_a_message_a_killed_run_was_sending_is_uncertain_and_not_resent(setup, attentive_sandbox):
    plan_messages()
    [message] = claim_batch(setup["connection"], size=1)
    mark_attempting(message)  # the run dies here: the request may have left
    OutboundMessage.objects.filter(pk=message.pk).update(attempted_at=timezone.now() - timedelta(minutes=5))
    counts = dispatch_messages()
    assert counts["interrupted"] == 1 and counts["sent"] == 2
    message.refresh_from_db()
    assert message.status == "uncertain" and "Send anyway" in message.detail
    assert message.to not in {m["to"] for m in attentive_sandbox.messages}


def test_only_claims_and_attempts_older_than_their_leases_are_settled_and_each_as_its_state_says(setup, settings):
    """A run still within its lease keeps what it claimed or is sending; past it, a claim never sent goes back to
    pending (its token cleared) and an attempt becomes uncertain (never resent), each looked at in its own state."""
    plan_messages()
    now = timezone.now()
    # A run at the very end of its time budget still holds its claims: the lease outlasts the budget.
    stale_claim = now - claim_lease() - timedelta(seconds=5)
    fresh_claim = now - timedelta(seconds=settings.MESSAGE_RUN_SECONDS)
    stale_attempt = now - settings.MESSAGE_ATTEMPT_LEASE - timedelta(seconds=5)
    fresh_attempt = now - settings.MESSAGE_ATTEMPT_LEASE / 2
    Status = OutboundMessage.Status
    rows = {
        "claimed, run gone": dict(status=Status.CLAIMED, claim="run-a", claimed_at=stale_claim),
        "claimed, run alive": dict(status=Status.CLAIMED, claim="run-b", claimed_at=fresh_claim),
        "attempting, run gone": dict(
            status=Status.ATTEMPTING, claim="run-c", claimed_at=stale_claim, attempted_at=stale_attempt,
            held_since=now - timedelta(hours=1),
        ),
        "attempting, run alive": dict(
            status=Status.ATTEMPTING, claim="run-d", claimed_at=stale_claim, attempted_at=fresh_attempt
        ),
    }  # fmt: skip
    messages = list(OutboundMessage.objects.order_by("pk"))
    for message, fields in zip(messages, rows.values(), strict=True):
        OutboundMessage.objects.filter(pk=message.pk).update(**fields)

    assert settle_interrupted_sends() == {"returned": 1, "interrupted": 1}

    settled = {
        name: OutboundMessage.objects.values("status", "claim", "held_since", "detail").get(pk=message.pk)
        for name, message in zip(rows, messages, strict=True)
    }
    assert settled == {
        "claimed, run gone": {"status": "pending", "claim": "", "held_since": None, "detail": ""},
        "claimed, run alive": {"status": "claimed", "claim": "run-b", "held_since": None, "detail": ""},
        "attempting, run gone": {"status": "uncertain", "claim": "", "held_since": None, "detail": INTERRUPTED_DETAIL},
        "attempting, run alive": {"status": "attempting", "claim": "run-d", "held_since": None, "detail": ""},
    }


def row(message: OutboundMessage) -> dict:
    return OutboundMessage.objects.values("status", "claim", "attempted_at", "sent_at", "detail").get(pk=message.pk)


def test_a_message_leaves_only_under_this_runs_claim_while_claimed_or_attempting(setup):
    """The last check before the request leaves: a message another run took back (its claim changed), or one that
    is settled whatever token it still carries, is not marked attempting — this run must not send it."""
    plan_messages()
    mine, taken_back, settled = claim_batch(setup["connection"], size=3)
    OutboundMessage.objects.filter(pk=taken_back.pk).update(claim="another-run")
    OutboundMessage.objects.filter(pk=settled.pk).update(status=OutboundMessage.Status.UNCERTAIN)
    before = timezone.now()

    mark_attempting(mine)
    for message in (taken_back, settled):
        with pytest.raises(TakenBack):
            mark_attempting(message)

    leaving = row(mine)
    assert leaving["status"] == "attempting" and before <= leaving["attempted_at"] <= timezone.now()
    assert (row(taken_back)["status"], row(taken_back)["claim"], row(taken_back)["attempted_at"]) == (
        "claimed",
        "another-run",
        None,
    )
    assert (row(settled)["status"], row(settled)["attempted_at"]) == ("uncertain", None)


def test_finishing_records_the_outcome_under_this_runs_claim_only_and_counts_it_once(setup):
    plan_messages()
    sent, failed, taken_back = claim_batch(setup["connection"], size=3)
    OutboundMessage.objects.filter(pk=sent.pk).update(detail="Held since 2026-12-01 10:00 UTC: Attentive is down.")
    OutboundMessage.objects.filter(pk=taken_back.pk).update(claim="another-run")
    before = timezone.now()

    finish(sent, OutboundMessage.Status.SENT)
    finish(failed, OutboundMessage.Status.FAILED, "x" * 2100)
    finish(taken_back, OutboundMessage.Status.SENT)

    assert row(sent)["status"] == "sent" and row(sent)["claim"] == "" and row(sent)["detail"] == ""
    assert before <= row(sent)["sent_at"] <= timezone.now()
    assert (row(failed)["status"], row(failed)["claim"], row(failed)["sent_at"]) == ("failed", "", None)
    assert row(failed)["detail"] == "x" * 2000
    assert (row(taken_back)["status"], row(taken_back)["claim"], row(taken_back)["sent_at"]) == (
        "claimed",
        "another-run",
        None,
    )
    counted = Rollup.objects.filter(series=rollups.MESSAGES).exclude(hour=rollups.ALL_TIME)
    assert sorted(counted.values_list("outcome", "count")) == [("failed", 1), ("sent", 1)]


def test_a_record_waits_out_a_short_database_outage_and_gives_up_after_its_patience():
    calls = []

    def fails_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("the database restarted")

    record_patiently(fails_once, patience=5)
    assert len(calls) == 2

    def always_fails() -> None:
        raise OperationalError("the database is down")

    with pytest.raises(OperationalError, match="is down"):
        record_patiently(always_fails, patience=0)


def test_a_run_claims_only_its_connections_pending_messages_oldest_first_and_stamps_the_claim(setup, client_b):
    plan_messages()
    other = ConnectionFactory(client=client_b, vendor="attentive")
    first, second, third, fourth = OutboundMessage.objects.order_by("pk")
    OutboundMessage.objects.filter(pk=first.pk).update(status=OutboundMessage.Status.SENT)
    OutboundMessage.objects.filter(pk=second.pk).update(connection=other)
    before = timezone.now()

    claimed = claim_batch(setup["connection"], size=1)

    assert [m.pk for m in claimed] == [third.pk]
    stamped = OutboundMessage.objects.get(pk=third.pk)
    assert stamped.status == "claimed" and before <= stamped.claimed_at <= timezone.now()
    assert [m.pk for m in claim_batch(setup["connection"])] == [fourth.pk]
    assert claim_batch(setup["connection"]) == []


def test_messages_another_run_claims_between_this_runs_read_and_its_claim_stay_the_other_runs(setup):
    """Two runs choose the same pending messages; the other claims them first (its own connection, let in by a
    wrapper around this connection's queries, after this run read the candidates). This run's claim takes only what
    is still pending: none of them, so no message is claimed, and sent, by both."""
    plan_messages()
    theirs: list[OutboundMessage] = []

    def another_run() -> None:
        theirs.extend(claim_batch(setup["connection"]))

    # Just before this run's claim, after it read the candidates.
    with db.execute_wrapper(at_query(statement("UPDATE", "members_outboundmessage"), another_run)):
        mine = claim_batch(setup["connection"])

    assert mine == [] and len(theirs) == 4
    claims = set(OutboundMessage.objects.values_list("claim", flat=True))
    assert claims == {theirs[0].claim}


def test_planning_reads_events_a_batch_at_a_time_and_counts_every_batch(setup):
    """Bounded memory whatever the backlog: each batch is one bounded read of the events (2 + 2 + the last one, then
    an empty read that ends the walk), and the counts add up across batches."""
    first = setup["members"][0]
    Member.objects.filter(pk=first.pk).update(loyalty_opted_in=False)  # its two events are skipped, in two batches
    LoyaltyEventFactory(client=first.client, member=first, external_id="ev-more", event_type="points_earned",
                        data={"points": 5})  # fmt: skip
    with CaptureQueriesContext(db) as queries:
        counts = plan_messages(batch_size=2)

    assert counts == {"planned": 5, "skipped": 2}
    event_reads = [q["sql"] for q in queries if 'FROM "members_loyaltyevent"' in q["sql"] and "LIMIT 2" in q["sql"]]
    assert len(event_reads) == 4


class ScriptedSender:
    """A vendor's message sender that answers by the script, call by call: True sends, False is a 503."""

    unreachable_reason = "Not subscribed."

    def __init__(self, script: list[bool]) -> None:
        self.script = list(script)

    def reachable(self, member_ids):
        return set(member_ids)

    def send(self, to: str, body: str, leaving) -> None:
        leaving()
        if not self.script.pop(0):
            raise Unavailable("Attentive", "Service Unavailable", status=503)


def test_transient_errors_are_waited_out_until_too_many_come_in_a_row_since_the_last_success(setup, settings):
    """A success starts the count of transient errors afresh: eight in a row are waited out (each message put back,
    unclaimed and without words), and the run goes on."""
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.0001
    settings.MESSAGE_RUN_SECONDS = 60
    member = setup["members"][0]
    for n in range(6):
        LoyaltyEventFactory(client=member.client, member=member, external_id=f"ev-extra-{n}",
                            event_type="points_earned", data={"points": 5})  # fmt: skip
    plan_messages()
    batch = claim_batch(setup["connection"], size=10)
    run = SendRun(setup["connection"], ScriptedSender([True] + [False] * 8 + [True]))

    for message in batch:
        run.deliver(message, True)

    assert not run.stop.is_set() and run.counts == {"sent": 2, "pending": 8}
    sent = OutboundMessage.objects.filter(status="sent")
    assert sorted(sent.values_list("pk", flat=True)) == [batch[0].pk, batch[-1].pk]
    assert all(m.attempted_at and m.attempted_at <= m.sent_at for m in sent)  # recorded as the request left
    put_back = OutboundMessage.objects.filter(pk__in=[m.pk for m in batch[1:-1]])
    assert set(put_back.values_list("status", "claim", "detail")) == {("pending", "", "")}


def test_a_message_without_a_number_is_skipped_saying_so_and_a_stopped_run_puts_the_rest_back(setup):
    plan_messages()
    no_number, left = claim_batch(setup["connection"], size=2)
    no_number.to = ""
    run = SendRun(setup["connection"], ScriptedSender([]))

    run.deliver(no_number, True)
    run.stop.set()
    run.deliver(left, True)

    assert row(no_number)["status"] == "skipped" and row(no_number)["detail"] == "The member has no mobile number."
    assert (row(left)["status"], row(left)["claim"], row(left)["detail"]) == ("pending", "", "")


class StatusAtTheLimit:
    """Attentive's messages limiter for the connection, reading each message's status while it waits there."""

    def __init__(self) -> None:
        self.rate = 150.0
        self.seen: list[set[str]] = []

    def acquire(self) -> float:
        self.seen.append(set(OutboundMessage.objects.values_list("status", flat=True)))
        return 0.0


def test_a_message_waiting_for_the_rate_limit_is_only_claimed_so_a_kill_there_puts_it_back(
    setup, attentive_sandbox, monkeypatch
):
    """Marked attempting only once the limit lets it go: a run killed while it waited (a busy connection can wait
    seconds) must not leave the message uncertain — it never left."""
    limit = StatusAtTheLimit()
    monkeypatch.setattr(ratelimit, "cache_is_shared", lambda: False)  # the probe stands in for the bucket (Redis too)
    monkeypatch.setitem(http._buckets, f"connection:{setup['connection'].pk}:messages", limit)
    assert dispatch_messages()["sent"] == 3
    assert len(limit.seen) == 3 and all("attempting" not in statuses for statuses in limit.seen)
    assert len(attentive_sandbox.messages) == 3


@pytest.mark.parametrize("status", ["401", "403"])
def test_rejected_legacy_token_stops_the_run_and_tells_the_admin(setup, attentive_sandbox, status):
    attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = status, "messages", 99
    counts = dispatch_messages()
    assert counts["sent"] == 0 and counts["stopped"] == 1
    connection = Connection.objects.get(pk=setup["connection"].pk)
    assert connection.status == Connection.Status.FAILING
    assert "legacyapi@attentivemobile.com" in connection.last_check_result
    # Nothing is lost: the messages wait for the token to be fixed.
    assert OutboundMessage.objects.filter(status="pending").count() == 4
    attentive_sandbox.fail_times = 0
    assert dispatch_messages()["sent"] == 3


def test_messages_wait_while_attentive_is_throttling(setup, attentive_sandbox, settings):
    attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "429", "messages", 99
    plan_messages()
    counts = send_pending(setup["connection"])  # backs off and goes on within its budget, then gives up
    assert counts.get("sent", 0) == 0 and counts["stopped"] == 1
    # Nothing lost: the three subscribers' messages wait for the next run (the fourth is not a subscriber).
    assert OutboundMessage.objects.filter(status="pending").count() == 3


def test_unknown_placeholders_are_rejected_when_a_template_is_saved(setup):
    template = MessageTemplate(
        client=setup["template"].client, event_type="tier_changed", connection=setup["connection"], text="Hi {nmae}"
    )
    with pytest.raises(ValidationError, match="Unknown placeholder"):
        template.full_clean()


@pytest.mark.skipif("db.vendor != 'postgresql'", reason="parallel writers need PostgreSQL")
def test_two_jobs_at_once_send_each_message_once(setup, attentive_sandbox, settings):
    settings.MESSAGE_SEND_CONCURRENCY = 4
    settings.MESSAGE_RUN_SECONDS = 120  # both runs finish within their budget, even on a busy machine
    members = [MemberFactory(client=setup["template"].client, phone=f"+1404555{1000 + n:04d}") for n in range(60)]
    ChannelSubscription.objects.bulk_create(
        ChannelSubscription(member=m, vendor="attentive", channel="TEXT", state="subscribed") for m in members
    )
    LoyaltyEvent.objects.bulk_create(
        LoyaltyEventFactory.build(client=m.client, member=m, external_id=f"bulk-{m.pk}", event_type="points_earned")
        for m in members
    )
    results: list[dict] = []

    def run() -> None:
        results.append(dispatch_messages())
        db.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["sent"] for r in results) == 63
    assert max(attentive_sandbox_counts(attentive_sandbox).values()) == 1


def attentive_sandbox_counts(state) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in state.messages:
        counts[message["to"]] = counts.get(message["to"], 0) + 1
    return counts


def test_an_uncertain_message_shows_its_evidence_and_can_be_sent_anyway(setup, attentive_sandbox, admin_http):
    plan_messages()
    [message] = claim_batch(setup["connection"], size=1)
    mark_attempting(message)
    OutboundMessage.objects.filter(pk=message.pk).update(attempted_at=timezone.now() - timedelta(minutes=5))
    dispatch_messages()
    page = admin_http.get(reverse("admin:members_outboundmessage_change", args=[message.pk])).content.decode()
    assert "Calls to the vendor from the attempt on" in page and "connection__id__exact" in page
    changelist = reverse("admin:members_outboundmessage_changelist")
    admin_http.post(changelist, {"action": "send_anyway", "_selected_action": [message.pk]})
    assert dispatch_messages()["sent"] == 1
    assert [m["to"] for m in attentive_sandbox.messages].count(message.to) == 1


def test_the_job_for_one_client_sends_only_that_clients_messages(setup, attentive_sandbox, client_b):

    other = LoyaltyEventFactory(client=client_b, member=MemberFactory(client=client_b), event_type="points_earned")
    counts = dispatch_loyalty_messages.apply(kwargs={"client_id": client_b.pk}).get()
    assert counts["sent"] == 0 and not OutboundMessage.objects.exists()
    other.refresh_from_db()
    assert other.messages_planned_at is not None  # planned (no template for client B), A's untouched
    assert dispatch_loyalty_messages.apply(kwargs={"client_id": setup["template"].client_id}).get()["sent"] == 3


def test_a_member_who_left_the_loyalty_program_gets_no_loyalty_messages_and_keeps_sms_consent(setup, attentive_sandbox):
    left = setup["members"][0]
    Member.objects.filter(pk=left.pk).update(loyalty_opted_in=False, opted_in=True)
    counts = dispatch_messages()
    assert counts["sent"] == 2 and counts["skipped"] == 2  # the one who left, and the one not subscribed to TEXT
    assert left.phone not in {m["to"] for m in attentive_sandbox.messages}
    message = OutboundMessage.objects.get(member=left)
    assert message.status == "skipped" and "opted out of the loyalty program" in message.detail
    left.refresh_from_db()
    assert left.opted_in is True  # an SMS opt-in stays: only an SMS opt-out ends it
