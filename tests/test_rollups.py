"""Rollups (issue 22): the hourly counts kept as things happen are what the dashboard and /metrics read. The
numbers are checked against what happened (requests a local fake vendor received, messages the Attentive
simulator took, points Annex Cloud's simulator applied), and building both pages reads no raw table."""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations import rollups
from integrations.annexcloud.flows import adjust_points
from integrations.connections import api_for
from integrations.http import RetryPolicy, VendorAPI, VendorError
from integrations.models import Connection, Rollup, VendorCall
from integrations.retention import prune_old_records
from members.messaging import dispatch_messages
from members.models import ChannelSubscription
from portal.dashboard import build_dashboard
from tests.factories import (
    ConnectionFactory,
    LoyaltyEventFactory,
    MemberFactory,
    MessageTemplateFactory,
    WebhookEventFactory,
)

RAW_TABLES = ("integrations_vendorcall", "members_outboundmessage", "integrations_webhookevent")
TOKEN = "rollup-scrape-token-123"


class EchoAPI(VendorAPI):
    vendor = "Demo"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer rollups-key-123456"}


@pytest.fixture
def vendor(db, httpserver: HTTPServer, client_a) -> Connection:
    """A connection to a local fake vendor: /ok answers 200, /slow answers 200 after 130 ms, /refuse answers 400."""

    def slow(request: Request) -> Response:
        time.sleep(0.13)
        return Response('{"ok": true}', content_type="application/json")

    httpserver.expect_request("/ok").respond_with_json({"ok": True})
    httpserver.expect_request("/slow").respond_with_handler(slow)
    httpserver.expect_request("/refuse").respond_with_json({"error": "no"}, status=400)
    return ConnectionFactory(
        client=client_a, base_url=httpserver.url_for("/"), secrets={"api_key": "rollups-key-123456"}
    )


def call(connection: Connection, path: str) -> None:
    api = api_for(connection, EchoAPI, retry=RetryPolicy(max_attempts=1))
    with contextlib.suppress(VendorError):  # a refused call is recorded all the same
        api.request("GET", path)


def received(httpserver: HTTPServer, path: str) -> int:
    """What the fake vendor received: the independent record."""
    return sum(1 for request, _ in httpserver.log if request.path == path)


def chart(dashboard, title):
    return next(chart for chart in dashboard.charts if chart.title == title)


def test_calls_through_a_fake_vendor_are_charted_as_the_vendor_received_them(site_admin, vendor, httpserver):
    for _ in range(6):
        call(vendor, "/ok")
    for _ in range(3):
        call(vendor, "/refuse")
    calls = chart(build_dashboard(site_admin, "24h"), "Vendor calls")
    ok = sum(bar.values["ok"] for bar in calls.bars)
    failed = sum(bar.values["failed"] for bar in calls.bars)
    assert (ok, failed) == (received(httpserver, "/ok"), received(httpserver, "/refuse")) == (6, 3)
    assert sum(bar.total for bar in chart(build_dashboard(site_admin, "7d"), "Vendor calls").bars) == 9


def test_p95_is_read_from_the_latency_buckets(site_admin, vendor, httpserver):
    # Half the calls take 130 ms or more (the fake vendor sleeps): the 95th percentile lies among them, above the
    # 100 ms bound, whatever the fast ones took on a busy machine.
    for _ in range(10):
        call(vendor, "/ok")
    for _ in range(10):
        call(vendor, "/slow")
    assert received(httpserver, "/slow") == 10
    latency = chart(build_dashboard(site_admin, "24h"), "p95 latency of vendor calls")
    p95 = max(bar.values["value"] for bar in latency.bars)
    assert p95 > 100


def test_the_quantile_of_a_histogram_interpolates_within_its_bucket():
    # 1..100 ms: 25 in ≤25, 25 in (25, 50], 50 in (50, 100]: the 95th of 100 is 95 ms.
    assert rollups.quantile({"25": 25, "50": 25, "100": 50}) == pytest.approx(95.0)
    assert rollups.quantile({"25": 1}) == pytest.approx(23.75)
    assert rollups.quantile({"+Inf": 3}) == 10000.0  # past the last bound: the highest finite one
    assert rollups.quantile({}) == 0.0
    assert [rollups.latency_bucket(ms) for ms in (0, 25, 26, 10000, 10001)] == ["25", "25", "50", "10000", "+Inf"]


def test_messages_and_points_sent_through_the_simulators_are_charted(
    site_admin, sandbox_attentive_connection, attentive_sandbox, annex_cloud_sandbox, client_a
):
    template = MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=sandbox_attentive_connection, text="Hi {first_name}!"
    )
    members = [MemberFactory(client=client_a, phone=f"+1770765{1850 + n}", first_name=f"M{n}") for n in range(3)]
    for member in members[:2]:  # the third is not subscribed: skipped
        ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    for member in members:
        LoyaltyEventFactory(
            client=client_a, member=member, external_id=f"r-{member.pk}", event_type=template.event_type
        )
    dispatch_messages()
    state, _ = annex_cloud_sandbox
    state.members["m0@x.com"] = {"id": "m0@x.com", "email": "m0@x.com", "availablePoints": 0}
    members[0].email = "m0@x.com"
    members[0].save()
    assert adjust_points(members[0], activity="credit", points=25, key="rollup-1", reason="bonus").outcome.ok
    charts = {chart.title: chart.total for chart in build_dashboard(site_admin).charts}
    assert charts["Messages sent"] == len(attentive_sandbox.messages) == 2
    assert charts["Points awarded"] == int(state.points["rollup-1"]["credit"]) == 25


def test_callbacks_are_counted_by_the_minute_job_once_and_lag_behind_the_clock(site_admin, connection_a):
    now = timezone.now()
    for minutes_ago in (50, 40, 30):
        WebhookEventFactory(connection=connection_a, received_at=now - timedelta(minutes=minutes_ago))
    WebhookEventFactory(connection=connection_a, received_at=now - timedelta(minutes=50), status="duplicate")
    recent = WebhookEventFactory(connection=connection_a, received_at=now - timedelta(seconds=30))
    assert rollups.roll_up_callbacks(now) == 4  # the one of 30 s ago may not have committed yet: later
    assert rollups.roll_up_callbacks(now) == 0  # never twice
    assert chart(build_dashboard(site_admin), "Callbacks received").total == 4
    assert rollups.roll_up_callbacks(now + timedelta(minutes=3)) == 1
    assert chart(build_dashboard(site_admin), "Callbacks received").total == 5
    assert recent.pk


def test_building_the_dashboard_and_metrics_reads_no_raw_table(site_admin, vendor, client, settings):
    settings.METRICS_TOKEN = TOKEN
    call(vendor, "/ok")
    with CaptureQueriesContext(db) as queries:
        for window in ("24h", "7d"):
            build_dashboard(site_admin, window)
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    sql = "\n".join(query["sql"] for query in queries.captured_queries).lower()
    assert "integrations_rollup" in sql
    assert [table for table in RAW_TABLES if table in sql] == []


def test_metrics_export_call_counters_and_a_latency_histogram(vendor, httpserver, client, settings):
    settings.METRICS_TOKEN = TOKEN
    for path in ("/ok", "/ok", "/slow", "/refuse"):
        call(vendor, path)
    assert client.get("/metrics").status_code == 401
    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    connection, kind = f'connection="{vendor.pk}"', f'vendor="{vendor.vendor}"'  # labels come sorted by name
    assert f'portal_vendor_calls_total{{{connection},error="",outcome="ok",{kind}}} 3.0' in body
    assert f"portal_vendor_call_latency_ms_count{{{connection},{kind}}} 4.0" in body
    assert f'portal_vendor_call_latency_ms_bucket{{{connection},le="+Inf",{kind}}} 4.0' in body
    fast = VendorCall.objects.filter(latency_ms__lte=100).count()  # the slow one is above; the others, if quick
    assert f'portal_vendor_call_latency_ms_bucket{{{connection},le="100",{kind}}} {fast:.1f}' in body
    refused = [line for line in body.splitlines() if line.startswith("portal_vendor_calls_total") and "ok" not in line]
    assert refused == [f'portal_vendor_calls_total{{{connection},error="rejected",outcome="failed",{kind}}} 1.0']


def test_retention_drops_old_hours_and_keeps_the_running_totals(connection_a):
    old = timezone.now() - timedelta(days=500)
    rollups.add([rollups.Tally(rollups.CALLS, "ok", connection_a.client_id, connection_a.pk, hour=old)])
    rollups.add([rollups.Tally(rollups.CALLS, "ok", connection_a.client_id, connection_a.pk)])
    assert prune_old_records()["rollups"] == 1
    totals = Rollup.objects.get(hour=rollups.ALL_TIME, series=rollups.CALLS)
    assert totals.count == 2
    assert Rollup.objects.filter(series=rollups.CALLS).exclude(hour=rollups.ALL_TIME).count() == 1


def test_one_statement_adds_to_the_hour_and_the_running_total(connection_a):
    with CaptureQueriesContext(db) as queries:
        rollups.add([rollups.Tally(rollups.CALLS, "ok", 1, 2), rollups.Tally(rollups.CALLS, "ok", 1, 2, total=5)])
    assert len(queries.captured_queries) == 1
    rows = {row.hour: (row.count, row.total) for row in Rollup.objects.all()}
    assert rows == {rollups.hour_of(timezone.now()): (2, 5), datetime(1970, 1, 1, tzinfo=UTC): (2, 5)}


@pytest.mark.skipif("db.vendor != 'postgresql'", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_increments_are_never_lost_on_postgresql(client_a):
    threads, per_thread = 8, 50
    start = threading.Barrier(threads)

    def count() -> None:
        start.wait()
        try:
            for n in range(per_thread):
                # Every writer on the same rows, and half of them first on a new hour's row (insert vs insert).
                hour = datetime(2030, 1, 1, n % 2, tzinfo=UTC)
                rollups.add([rollups.Tally(rollups.CALLS, "ok", 7, 9, total=3, hour=hour)])
        finally:
            db.close()

    workers = [threading.Thread(target=count) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    totals = Rollup.objects.get(hour=rollups.ALL_TIME, series=rollups.CALLS, connection_pk=9)
    assert (totals.count, totals.total) == (threads * per_thread, 3 * threads * per_thread)
    per_hour = Rollup.objects.filter(series=rollups.CALLS, connection_pk=9).exclude(hour=rollups.ALL_TIME)
    assert sorted(per_hour.values_list("count", flat=True)) == [threads * per_thread // 2] * 2


def calls_counted(connection: Connection) -> int:
    row = Rollup.objects.filter(
        hour=rollups.ALL_TIME, series=rollups.CALLS, connection_pk=connection.pk, outcome=rollups.OK
    ).first()
    return row.count if row else 0


def test_a_process_buffers_its_counts_and_writes_them_in_one_statement_when_flushed(
    connection_a, httpserver: HTTPServer, settings, django_capture_on_commit_callbacks
):
    """Every send thread adding to the same hour's row in its own statement made those rows the message job's
    bottleneck: events are counted into the process's buffer and written together."""
    settings.ROLLUP_FLUSH_SECONDS = 60
    httpserver.expect_request("/ok").respond_with_data("{}")
    connection_a.base_url = httpserver.url_for("/")
    connection_a.save()
    api = api_for(connection_a, VendorAPI)
    with django_capture_on_commit_callbacks(execute=True):  # each call's commit, as outside a test's transaction
        for _ in range(3):
            api.request("GET", "/ok")
    assert VendorCall.objects.filter(connection=connection_a).count() == 3
    assert calls_counted(connection_a) == 0  # in the buffer, not written yet
    with CaptureQueriesContext(db) as written:
        rollups.flush()
    assert calls_counted(connection_a) == 3 and len(written.captured_queries) == 1


def test_a_count_whose_transaction_rolls_back_is_never_written(
    connection_a, settings, django_capture_on_commit_callbacks
):
    from django.db import transaction

    settings.ROLLUP_FLUSH_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=True), contextlib.suppress(RuntimeError), transaction.atomic():
        rollups.counted(
            rollups.CALLS, outcome=rollups.OK, client_pk=connection_a.client_id, connection_pk=connection_a.pk
        )
        raise RuntimeError("the event's transaction fails")
    rollups.flush()
    assert calls_counted(connection_a) == 0


@pytest.mark.django_db(transaction=True)  # the timer writes from its own thread and connection
def test_the_buffer_writes_itself_within_its_period(connection_a, settings, django_capture_on_commit_callbacks):
    settings.ROLLUP_FLUSH_SECONDS = 0.2
    with django_capture_on_commit_callbacks(execute=True):
        rollups.counted(
            rollups.CALLS, outcome=rollups.OK, client_pk=connection_a.client_id, connection_pk=connection_a.pk
        )
    deadline = time.monotonic() + 10
    while not calls_counted(connection_a) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls_counted(connection_a) == 1
