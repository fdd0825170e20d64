"""The admin dashboard under a production-sized history: N vendor calls and M job runs spread over 30 days, with
every other record a chart or a "Needs attention" line reads filled in proportion to the calls (messages sent and
their loyalty events, callbacks, points, First Orion pushes and their batches, Bazaarvoice reviews, a failing
connection), served by gunicorn, fetched by a logged-in site admin for the 24-hour and the 7-day window, and
/metrics scraped with its token.

The raw rows are generated in SQL, so the hourly rollups the dashboard and /metrics read (integrations/rollups.py)
are counted from them afterwards the way the portal counts them as things happen: per hour, connection, client and
outcome, and `rollup_calls` (the running total of vendor calls) must equal the calls in the table.

    .venv/bin/python bench/dashboard.py --calls 1000000 --runs 100000 --database-url postgres://postgres@127.0.0.1:5432/postgres

Prints one line: backend=… calls=… job_runs=… members=… messages=… callbacks=… points=… pushes=… push_batches=…
reviews=… charts=… empty_charts=… failing_connections=… troubled_runs=… vendor_troubles=… requests=…
bad_responses=… p50_ms=… p95_ms=… p50_7d_ms=… p95_7d_ms=… rollup_rows=… rollup_calls=… call_outcomes=…
old_call_outcomes=… metrics_ms=…, and exits 1 when one of INVARIANTS breaks. The row figures are counted in the
database after filling; `empty_charts` counts the charts (either window) the dashboard's own code draws with nothing
in them, so a chart added on a series this bench does not fill breaks the run instead of being timed empty; the
calls hold every outcome the calls' chart draws (ok, not found, refused, failed, uncertain: CALL_MIX), counted under
the names the portal counts them by (`call_outcomes`, and none under a name from before: `old_call_outcomes`).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_database_argument, bench_django, free_port, gunicorn, print_result
from bench.segment_export import analyze, insert_select

SMOKE_ARGS = ["--calls", "2000", "--runs", "200", "--requests", "3"]
FULL_CALLS = 1_000_000
# Every table a chart or a trouble line reads is filled and every chart has bars; every page answered 200 with the
# dashboard; at the full size (FULL_CALLS: the list is a literal, read by bench/smoke.py), the page stays fast in
# both windows. Measured with every chart filled, on 2 shared cores under load: p95 0.7 s (24 hours), 1.7 s (7 days).
INVARIANTS = [
    "calls >= 1",
    "job_runs >= 1",
    "messages >= 1",
    "callbacks >= 1",
    "points >= 1",
    "pushes >= 1",
    "push_batches >= 1",
    "reviews >= 1",
    "charts >= 7",
    "empty_charts == 0",
    "failing_connections >= 1",
    "troubled_runs >= 1",
    "vendor_troubles >= 1",
    "bad_responses == 0",
    "rollup_calls == calls",
    "call_outcomes == 5",
    "old_call_outcomes == 0",
    "calls < 1000000 or metrics_ms < 100",
    "calls < 1000000 or p95_ms < 1000",
    "calls < 1000000 or p95_7d_ms < 2000",
]
PASSWORD = "bench-dashboard-password"
METRICS_TOKEN = "bench-dashboard-metrics-token"
SPREAD_SECONDS = 30 * 24 * 3600
# The connections whose calls fill the call charts; the client has one of every vendor.
CALLING_VENDORS = ("annex_cloud", "attentive", "vibes")
ALL_VENDORS = (*CALLING_VENDORS, "first_orion", "bazaarvoice", "sessionm")
# Each record per vendor call, with a floor so a tiny run still has some in the last 24 hours: most calls send an SMS
# (one call each), a callback comes for one in five, points for one in ten; a First Orion batch is one call of a
# thousand destinations, ten to a push; reviews are a trickle.
SHARES = {
    "members": (0.001, 100),
    "messages": (0.4, 300),
    "callbacks": (0.2, 300),
    "points": (0.1, 300),
    "reviews": (0.02, 300),
    "push_batches": (0.005, 300),
    "pushes": (0.0005, 30),
}

# Per-row SQL over the generated number g (the statement takes parameters, so % is written %%): spread over 30 days
# by a prime of its own per table, so the tables' hours differ.
AGO = {
    "postgresql": "now() - ((g::bigint * {prime}) %% {SPREAD}) * interval '1 second'",
    "sqlite": "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || ((g * {prime}) %% {SPREAD}) || ' seconds')",
}


# Of every 200 vendor calls, by the row they leave (error_type, status code) — the portal's traffic as the dashboard
# counts it since expected answers are not failures: most answered; a look-up's 404 before adding (Vibes' person
# look-up, Annex Cloud's "not a member" AC1005) is common and expected; a verify probe's refusal (SessionM) is
# expected too; a few fail outright (an outage's 503, a rate limit, a request the vendor rejected); a few are
# uncertain (a read timeout with no answer, a gateway's 502), which the rollup tells by the rule integrations/http.py
# applies (UNCERTAIN_STATUSES, or no answer at all).
CALL_MIX = [
    (8, "expected_not_found", "404"),
    (1, "expected_refusal", "409"),
    (1, "unavailable", "503"),
    (1, "rate_limited", "429"),
    (1, "rejected", "400"),
    (1, "timeout", "NULL"),
    (1, "unavailable", "502"),
]
CALL_MIX_OF = 200  # the rest answered: ok, 200


def mixed_calls(column: str) -> str:
    """Per-row SQL of call g's `column` ("error_type" or "status_code") in CALL_MIX's proportions."""
    cases, start = [], 0
    for share, error_type, status in CALL_MIX:
        value = f"'{error_type}'" if column == "error_type" else status
        cases.append(f"WHEN g %% {CALL_MIX_OF} < {start + share} THEN {value}")
        start += share
    ok = "''" if column == "error_type" else "200"
    return f"CASE {' '.join(cases)} ELSE {ok} END"


def ago(backend: str, prime: int) -> str:
    return AGO[backend].format(prime=prime, SPREAD=SPREAD_SECONDS)


def count_for(table: str, calls: int) -> int:
    share, floor = SHARES[table]
    return max(floor, int(calls * share))


def insert_rows(model: Any, template: Any, expressions: dict[str, str], rows: int) -> None:
    """Rows 1…N generated inside the database (a million ORM objects would measure the ORM)."""
    from django.db import connection

    insert, params = insert_select(model, template, expressions)
    if connection.vendor == "postgresql":
        statement, params = f"{insert} FROM generate_series(1, %s) AS s(g)", [*params, rows]
    else:
        series = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < %s) "
        statement, params = f"{series}{insert} FROM s", [rows, *params]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def insert_per_row_of(model: Any, template: Any, expressions: dict[str, str], source: str, params: list[Any]) -> None:
    """One row per row of `source`, a query naming its id g (and whatever else the expressions read)."""
    from django.db import connection

    insert, insert_params = insert_select(model, template, expressions)
    with connection.cursor() as cursor:
        cursor.execute(f"{insert} FROM ({source}) AS s", [*insert_params, *params])


def contiguous_ids(model: Any, **filters: Any) -> tuple[int, int]:
    """The first id and the count of rows the bench just made in one statement (a fresh database numbers them
    without gaps); per-row SQL then picks one by `first + g % count`."""
    from django.db.models import Count, Max, Min

    span = model.objects.filter(**filters).aggregate(first=Min("pk"), last=Max("pk"), count=Count("pk"))
    assert span["last"] - span["first"] + 1 == span["count"], f"{model.__name__} ids have gaps: {span}"
    return span["first"], span["count"]


class History:
    """A client with a connection of every vendor and 30 days of records behind each chart. The portal code this
    bench uses is imported here only."""

    def __init__(self, calls: int, runs: int) -> None:
        from django.db import connection

        from integrations.models import Client, Connection

        self.calls, self.runs = calls, runs
        self.backend = connection.vendor
        self.client = Client.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
        self.connections = {
            vendor: Connection.objects.create(client=self.client, vendor=vendor, status="active")
            for vendor in ALL_VENDORS
        }
        # One connection failing: the first line of "Needs attention".
        Connection.objects.filter(pk=self.connections["sessionm"].pk).update(status="failing")

    def fill(self) -> None:
        self.vendor_calls()
        self.job_runs()
        self.members()
        self.messages()
        self.callbacks()
        self.points()
        self.pushes()
        self.reviews()

    def vendor_calls(self) -> None:
        """Every outcome the dashboard charts (integrations/http.py CALL_OUTCOMES), in CALL_MIX's proportions."""
        from integrations.models import VendorCall

        expressions = {
            "created_at": ago(self.backend, 7919),
            "status_code": mixed_calls("status_code"),
            "error_type": mixed_calls("error_type"),
            "latency_ms": "(g * 31) %% 900",
        }
        for index, vendor in enumerate(CALLING_VENDORS):
            share = self.calls // len(CALLING_VENDORS) + (1 if index < self.calls % len(CALLING_VENDORS) else 0)
            template = VendorCall(connection=self.connections[vendor], method="POST", url="https://vendor.example/v1/x")
            insert_rows(VendorCall, template, expressions, share)

    def job_runs(self) -> None:
        from integrations.models import JobRun

        expressions = {
            "started_at": ago(self.backend, 104729),
            "outcome": "CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'succeeded' END",  # one run in 50 failed
        }
        insert_rows(JobRun, JobRun(job="members.dispatch_loyalty_messages", counts={"sent": 1}), expressions, self.runs)

    def members(self) -> None:
        from members.models import Member

        expressions = {
            "phone": "'+1404' || (5550000 + g)",
            "email": "'member' || g || '@example.com'",
            "annex_cloud_id": "'ac' || g",
        }
        insert_rows(
            Member, Member(client=self.client, first_name="Pat", opted_in=True), expressions, self.count("members")
        )
        self.first_member, self.member_count = contiguous_ids(Member, client=self.client)

    def member_of_row(self) -> str:
        return f"{self.first_member} + (g %% {self.member_count})"

    def messages(self) -> None:
        """Loyalty events, each with its SMS: most sent, one in 25 failed."""
        from members.models import LoyaltyEvent, MessageTemplate, OutboundMessage

        count = self.count("messages")
        event = LoyaltyEvent(client=self.client, event_type="points_earned", data={"points": 5})
        when = ago(self.backend, 6007)
        expressions = {"member": self.member_of_row(), "external_id": "'order-' || g", "occurred_at": when}
        insert_rows(LoyaltyEvent, event, {**expressions, "received_at": when, "messages_planned_at": when}, count)
        template = MessageTemplate.objects.create(
            client=self.client,
            event_type="points_earned",
            connection=self.connections["attentive"],
            text="Hi {first_name}, +{points} points!",
        )
        message = OutboundMessage(
            template=template, connection=self.connections["attentive"], body="Hi Pat, +5 points!"
        )
        table = LoyaltyEvent._meta.db_table
        source = f"SELECT id AS g, member_id AS m FROM {table} WHERE client_id = %s"  # noqa: S608 - a model's table
        sent = ago(self.backend, 6007)
        expressions = {
            "event": "g",
            "member": "m",
            "to": "'+14045550000'",
            "status": "CASE WHEN g %% 25 = 0 THEN 'failed' ELSE 'sent' END",
            "created_at": sent,
            "attempted_at": sent,
            "sent_at": f"CASE WHEN g %% 25 = 0 THEN NULL ELSE {sent} END",
        }
        insert_per_row_of(OutboundMessage, message, expressions, source, [self.client.pk])

    def callbacks(self) -> None:
        """Vibes subscription callbacks, one in 20 refused as malformed."""
        from integrations.models import WebhookEvent

        when = ago(self.backend, 5003)
        template = WebhookEvent(
            connection=self.connections["vibes"],
            event_type="subscription_added",
            headers={"Content-Type": "application/json"},
            body='{"callback_type": "subscription_added", "subscription": {"person": {"id": "P1"}}}',
        )
        expressions = {
            "event_id": "CASE WHEN g %% 20 = 0 THEN NULL ELSE 'ev-' || g END",
            "status": "CASE WHEN g %% 20 = 0 THEN 'rejected' ELSE 'processed' END",
            "received_at": when,
            "processed_at": when,
        }
        insert_rows(WebhookEvent, template, expressions, self.count("callbacks"))

    def points(self) -> None:
        """Annex Cloud points: credits mostly, one in ten a debit, one in 30 failed."""
        from members.models import PointsTransaction

        template = PointsTransaction(client=self.client, points=0, action_id="101", reason="Order")
        expressions = {
            "member": self.member_of_row(),
            "key": "'order-' || g",
            "activity": "CASE WHEN g %% 10 = 0 THEN 'debit' ELSE 'credit' END",
            "points": "1 + g %% 50",
            "status": "CASE WHEN g %% 30 = 0 THEN 'failed' ELSE 'applied' END",
            "created_at": ago(self.backend, 4001),
        }
        insert_rows(PointsTransaction, template, expressions, self.count("points"))

    def pushes(self) -> None:
        """First Orion pushes (one in five failed: trouble lines when recent) and their batches of a thousand."""
        from integrations.first_orion.models import ProgramContent, Push, PushBatch

        content = ProgramContent.objects.create(
            client=self.client,
            name="Loyalty calls",
            program_content_uuid="6f1c2a43-9e7b-4b8e-8a57-0d4c0b5d3c21",
            a_numbers=["+14045550100"],
        )
        when = ago(self.backend, 3001)
        expressions = {
            "status": "CASE WHEN g %% 5 = 0 THEN 'failed' ELSE 'sent' END",
            "created_at": when,
            "finished_at": when,
        }
        template = Push(client=self.client, program_content=content, source="members", destinations=10_000)
        insert_rows(Push, template, expressions, self.count("pushes"))
        first, count = contiguous_ids(Push, client=self.client)
        destination = {"bNumber": "+14045550000", "customTrackingId": "bench"}
        batch = PushBatch(size=1000, destinations=[destination], request_id="bench")
        settled = ago(self.backend, 2003)
        expressions = {
            "push": f"{first} + (g %% {count})",
            "index": "g",
            "status": "CASE WHEN g %% 40 = 0 THEN 'failed' ELSE 'sent' END",
            "attempted_at": settled,
            "settled_at": settled,
        }
        insert_rows(PushBatch, batch, expressions, self.count("push_batches"))

    def reviews(self) -> None:
        """Bazaarvoice reviews: most rewarded, the rest by reviewers who are not members; one in 50 awards reversed
        (the charts are net of it). A reversed review's `updated_at` is its award's moment here: the portal counts a
        reversal in the award's hour (bazaarvoice/rewards.py reversal_counted), which is all a chart reads of it."""
        from integrations.bazaarvoice.models import Review

        when = ago(self.backend, 1009)
        template = Review(client=self.client, product_id="sku-1", rating=5, masked_email="p***@example.com")
        expressions = {
            "review_id": "'review-' || g",
            "moderated_at": when,
            "updated_at": when,
            "outcome": "CASE WHEN g %% 4 = 0 THEN 'not_member' WHEN g %% 50 = 1 THEN 'reversed' ELSE 'awarded' END",
            "points": "CASE WHEN g %% 4 = 0 THEN 0 ELSE 25 END",
            "reversed_at": f"CASE WHEN g %% 4 <> 0 AND g %% 50 = 1 THEN {when} END",
            "reversal_reason": "CASE WHEN g %% 4 <> 0 AND g %% 50 = 1 THEN 'Fraudulent review' ELSE '' END",
        }
        insert_rows(Review, template, expressions, self.count("reviews"))

    def count(self, table: str) -> int:
        return count_for(table, self.calls)

    def filled(self) -> dict[str, int]:
        """Rows per table, counted back from the database."""
        from integrations.bazaarvoice.models import Review
        from integrations.first_orion.models import Push, PushBatch
        from integrations.models import JobRun, VendorCall, WebhookEvent
        from members.models import Member, OutboundMessage, PointsTransaction

        models = {
            "calls": VendorCall,
            "job_runs": JobRun,
            "members": Member,
            "messages": OutboundMessage,
            "callbacks": WebhookEvent,
            "points": PointsTransaction,
            "pushes": Push,
            "push_batches": PushBatch,
            "reviews": Review,
        }
        return {name: model.objects.count() for name, model in models.items()}

    def settle(self) -> None:
        """What autovacuum does after a bulk load (statistics, and the visibility map that lets PostgreSQL answer
        from an index alone), so the dashboard is measured in the steady state it runs in."""
        from django.apps import apps
        from django.db import connection

        tables = [model._meta.db_table for model in apps.get_models()]
        if connection.vendor != "postgresql":
            analyze(*tables)
            return
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")

    def roll_up(self) -> None:
        """The rollups of the generated history, counted from the raw rows per hour as the portal counts each event
        when it happens (the same series, outcomes and latency buckets), in batches of one statement each."""
        from integrations import rollups

        tallies = [tally for source in rollup_sources() for tally in source()]
        for start in range(0, len(tallies), 1000):
            rollups.add(tallies[start : start + 1000])
        first, last = history_span()
        rollups.count_callbacks(first, last)


def history_span() -> tuple[Any, Any]:
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    return now - timedelta(seconds=SPREAD_SECONDS + 3600), now + timedelta(hours=1)


def rollup_sources() -> list[Any]:
    """One function per series, each returning the tallies of its grouped rows."""
    from django.db.models import Case, CharField, Count, F, IntegerField, Q, Sum, Value, When
    from django.db.models.functions import Coalesce, Concat, TruncHour

    from integrations import rollups
    from integrations.bazaarvoice.models import Review
    from integrations.bazaarvoice.rewards import REVIEWS_SETTLED
    from integrations.first_orion.flows import PUSHED
    from integrations.first_orion.models import PushBatch
    from integrations.http import EXPECTED_KINDS, FAILED, UNCERTAIN, UNCERTAIN_STATUSES
    from integrations.models import JobRun, VendorCall
    from members.models import OutboundMessage, PointsTransaction

    def grouped(series: str, rows: Any, when: str, outcome: Any, client: str, connection: str = "", total: Any = None):
        def tallies() -> list[Any]:
            summed = Coalesce(total, 0, output_field=IntegerField()) if total is not None else Value(0)
            found = (
                rows.order_by()
                .values(
                    hour=TruncHour(when, tzinfo=UTC),
                    kind=outcome,
                    client_pk=F(client),
                    connection_pk=F(connection) if connection else Value(0),
                )
                .annotate(n=Count("pk"), summed=summed)
            )
            return [
                rollups.Tally(
                    series,
                    row["kind"],
                    row["client_pk"] or 0,
                    row["connection_pk"] or 0,
                    row["n"],
                    row["summed"] or 0,
                    hour=row["hour"],
                )
                for row in found
            ]

        return tallies

    # As rollups.call_outcome names a recorded call: ok, the expected answers, else failed or uncertain with the
    # error's kind. The row does not keep `uncertain`: it is told here by integrations/http.py's rule.
    call_outcome = Case(
        When(error_type="", then=Value(rollups.OK)),
        *(When(error_type=kind, then=Value(outcome)) for kind, outcome in EXPECTED_KINDS.items()),
        When(
            Q(status_code__isnull=True) | Q(status_code__in=sorted(UNCERTAIN_STATUSES)),
            then=Concat(Value(f"{UNCERTAIN}:"), "error_type"),
        ),
        default=Concat(Value(f"{FAILED}:"), "error_type"),
        output_field=CharField(),
    )
    bucket = Case(
        *(When(latency_ms__lte=bound, then=Value(str(bound))) for bound in rollups.LATENCY_BUCKETS_MS),
        default=Value(rollups.INF),
        output_field=CharField(),
    )
    calls = VendorCall.objects.all()
    settled = OutboundMessage.objects.exclude(status__in=rollups.UNSETTLED_MESSAGE_STATUSES)
    points_outcome = Concat("activity", Value(":"), "status", output_field=CharField())
    reversed_reviews = Review.objects.filter(outcome=Review.Outcome.REVERSED)
    return [
        grouped(rollups.CALLS, calls, "created_at", call_outcome, "connection__client_id", "connection_id"),
        grouped(
            rollups.LATENCY, calls, "created_at", bucket, "connection__client_id", "connection_id", Sum("latency_ms")
        ),
        grouped(rollups.MESSAGES, settled, "attempted_at", F("status"), "connection__client_id", "connection_id"),
        grouped(
            rollups.POINTS,
            PointsTransaction.objects.all(),
            "created_at",
            points_outcome,
            "client_id",
            total=Sum("points"),
        ),
        grouped(rollups.JOB_RUNS, JobRun.objects.all(), "started_at", F("outcome"), "client_id"),
        grouped(PUSHED, PushBatch.objects.all(), "settled_at", F("status"), "push__client_id", total=Sum("size")),
        grouped(REVIEWS_SETTLED, Review.objects.all(), "updated_at", F("outcome"), "client_id"),
        # A reversed review was counted awarded when it was settled, then reversed (and its credit taken off the
        # points awarded) in the same hour.
        grouped(REVIEWS_SETTLED, reversed_reviews, "updated_at", Value(Review.Outcome.AWARDED), "client_id"),
        grouped(
            rollups.POINTS,
            reversed_reviews,
            "updated_at",
            Value(rollups.CREDIT_REVERSED),
            "client_id",
            total=Sum("points"),
        ),
    ]


def drawn(user: Any) -> dict[str, int]:
    """What the dashboard's own code draws for this user: its charts in both windows, how many of them are empty,
    and its lines of trouble by source."""
    from portal.dashboard import build_dashboard

    day, week = build_dashboard(user, "24h"), build_dashboard(user, "7d")
    charts = day.charts + week.charts
    return {
        "charts": len(week.charts),
        "empty_charts": sum(chart.total == 0 for chart in charts),
        "failing_connections": len(day.failing_connections),
        "troubled_runs": len(day.troubled_runs),
        "vendor_troubles": len(day.vendor_troubles),
    }


def logged_in_session(port: int) -> Any:
    import requests

    session = requests.Session()
    login = f"http://127.0.0.1:{port}/admin/login/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(login, timeout=60).text)
    assert token, "no log-in form"
    answer = session.post(
        login,
        data={
            "username": "bench-admin",
            "password": PASSWORD,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/admin/",
        },
        headers={"Referer": login},
        timeout=60,
    )
    answer.raise_for_status()
    return session


def timings_ms(session: Any, port: int, window: str, count: int) -> tuple[list[float], int]:
    """Milliseconds per dashboard page of the window, and how many answers were not the dashboard with a 200."""
    url = f"http://127.0.0.1:{port}/admin/?window={window}"
    session.get(url, timeout=120)  # warm: connections, template cache
    found, bad = [], 0
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=120)
        found.append((time.perf_counter() - started) * 1000)
        bad += response.status_code != 200 or "Vendor calls" not in response.text
    return found, bad


def metrics_ms(port: int, count: int) -> tuple[float, int]:
    """The median time of a /metrics scrape, and how many answers were not its counters with a 200."""
    import requests

    url, headers = f"http://127.0.0.1:{port}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"}
    requests.get(url, headers=headers, timeout=120)  # warm
    found, bad = [], 0
    for _ in range(count):
        started = time.perf_counter()
        response = requests.get(url, headers=headers, timeout=120)
        found.append((time.perf_counter() - started) * 1000)
        bad += response.status_code != 200 or "portal_vendor_calls_total" not in response.text
    return statistics.median(found), bad


def rolled_up() -> dict[str, int]:
    """The rollups' rows, their running total of calls, and how many of the dashboard's call outcomes (ok, not
    found, refused, failed, uncertain) they hold; `old_call_outcomes` counts calls under a name from before the
    outcomes (a bare error kind or "failed"), which the dashboard reads as failures."""
    from integrations import rollups
    from integrations.models import Rollup

    totals = rollups.all_time([rollups.CALLS])
    labels = {rollups.call_label(row["outcome"])[0] for row in totals}
    old = sum(row["count"] for row in totals if not is_current_call_outcome(row["outcome"]))
    return {
        "rollup_rows": Rollup.objects.count(),
        "rollup_calls": sum(row["count"] for row in totals),
        "call_outcomes": len(labels),
        "old_call_outcomes": old,
    }


def is_current_call_outcome(outcome: str) -> bool:
    """ "ok", "not_found", "refused", or "failed:<kind>" / "uncertain:<kind>" (integrations/rollups.py call_outcome)."""
    from integrations.http import FAILED, NOT_FOUND, OK, REFUSED, UNCERTAIN

    label, colon, _ = outcome.partition(":")
    return outcome in (OK, NOT_FOUND, REFUSED) or (label in (FAILED, UNCERTAIN) and bool(colon))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=FULL_CALLS)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    add_database_argument(parser)
    args = parser.parse_args()
    with bench_django(args.database_url, METRICS_TOKEN=METRICS_TOKEN) as env:
        from django.contrib.auth import get_user_model
        from django.db import connection

        history = History(args.calls, args.runs)
        history.fill()
        history.roll_up()
        history.settle()
        filled = history.filled()
        rollup_counts = rolled_up()
        admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", PASSWORD)
        shown = drawn(admin)
        connection.close()
        port = free_port()
        with gunicorn(env, port, "--workers", "1", "--timeout", "300"):
            session = logged_in_session(port)
            day, bad_day = timings_ms(session, port, "24h", args.requests)
            week, bad_week = timings_ms(session, port, "7d", args.requests)
            scrape_ms, bad_scrapes = metrics_ms(port, args.requests)
    print_result(
        INVARIANTS,
        backend=history.backend,
        **filled,
        **shown,
        requests=args.requests,
        bad_responses=bad_day + bad_week + bad_scrapes,
        p50_ms=f"{statistics.median(day):.0f}",
        p95_ms=f"{p95(day):.0f}",
        p50_7d_ms=f"{statistics.median(week):.0f}",
        p95_7d_ms=f"{p95(week):.0f}",
        **rollup_counts,
        metrics_ms=f"{scrape_ms:.0f}",
    )


if __name__ == "__main__":
    main()
