"""The dashboard's charts say what they mean (issue 24): vendor calls by outcome, where an answer the caller expected
(a look-up's 404, a verify probe that is meant to be refused) is "not found" or "refused", never failed; points and
rewarded reviews net of reversals; every bucket of the window drawn on a scale; each chart linked to the list of
exactly the rows it counts. Vendors are reached over real HTTP (a local fake vendor, the sandbox simulators)."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from datetime import timedelta
from html import unescape
from importlib import import_module
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.apps import apps as django_apps
from django.db.models import F, QuerySet
from django.utils import timezone
from pytest_httpserver import HTTPServer

from integrations import connections, rollups
from integrations.annexcloud import flows as annexcloud
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.models import Review
from integrations.connections import api_for
from integrations.first_orion import flows as first_orion
from integrations.first_orion.models import Push, PushBatch
from integrations.http import NOT_FOUND_EXPECTED, ExpectedAnswer, Rejected, RetryPolicy, VendorAPI, VendorError
from integrations.models import Connection, Rollup, VendorCall
from integrations.sessionm import sandbox as sessionm_simulator
from integrations.vibes.flows import sync_person
from members.messaging import dispatch_messages
from members.models import ChannelSubscription, Member, OutboundMessage, PointsTransaction
from portal.dashboard import build_dashboard
from tests.factories import (
    ConnectionFactory,
    LoyaltyEventFactory,
    MemberFactory,
    MessageTemplateFactory,
    WebhookEventFactory,
)
from tests.first_orion_fixtures import connect_first_orion

pytestmark = pytest.mark.django_db(transaction=True)


class FakeVendorAPI(VendorAPI):
    vendor = "Demo"


@pytest.fixture
def fake_vendor(httpserver: HTTPServer, client_a) -> Connection:
    """A local fake vendor: /ok 200, /missing and /gone 404, /refused 422 (code probe_refused), /broken 500 (the
    request may have been acted on: uncertain), /down 503 (not acted on: failed)."""
    httpserver.expect_request("/ok").respond_with_json({"ok": True})
    httpserver.expect_request("/missing").respond_with_json({"error": "no such person"}, status=404)
    httpserver.expect_request("/gone").respond_with_json({"error": "no such person"}, status=404)
    httpserver.expect_request("/refused").respond_with_json({"code": "probe_refused"}, status=422)
    httpserver.expect_request("/broken").respond_with_json({"error": "boom"}, status=500)
    httpserver.expect_request("/down").respond_with_json({"error": "later"}, status=503)
    return ConnectionFactory(client=client_a, vendor="vibes", base_url=httpserver.url_for("/"))


PROBE_REFUSED = ExpectedAnswer(Rejected)


def call(connection: Connection, path: str, expected: ExpectedAnswer | None = None) -> None:
    api = api_for(connection, FakeVendorAPI, retry=RetryPolicy(max_attempts=1))
    with contextlib.suppress(VendorError):  # the caller handles the refusal; the call is recorded all the same
        api.request("GET", path, expected=expected)


def calls_chart(dashboard):
    return next(chart for chart in dashboard.charts if chart.title == "Vendor calls")


def chart(dashboard, title):
    return next(chart for chart in dashboard.charts if chart.title == title)


def outcomes(dashboard) -> dict[str, float]:
    """The vendor calls of the window per outcome (only the outcomes that occur)."""
    found: Counter[str] = Counter()
    for bar in calls_chart(dashboard).bars:
        found.update(bar.values)
    return {name: count for name, count in found.items() if count}


# --- Outcomes ------------------------------------------------------------------------------------------------------


def test_an_expected_404_is_drawn_as_not_found_and_only_real_failures_are_failed(site_admin, fake_vendor):
    call(fake_vendor, "/ok")
    call(fake_vendor, "/missing", NOT_FOUND_EXPECTED)  # a look-up before creating the person
    call(fake_vendor, "/gone")  # the same answer where nobody expected it: a failure
    call(fake_vendor, "/refused", PROBE_REFUSED)  # a verify probe that is meant to be refused
    call(fake_vendor, "/broken", NOT_FOUND_EXPECTED)  # a 500 is never an expected answer
    call(fake_vendor, "/down")

    dashboard = build_dashboard(site_admin, "24h")

    assert outcomes(dashboard) == {"ok": 1, "not_found": 1, "refused": 1, "failed": 2, "uncertain": 1}
    assert calls_chart(dashboard).alarm == 3  # the "failed" figure and its red: failed + uncertain only
    rows = dict(VendorCall.objects.values_list("url", "error_type"))
    assert rows[f"{fake_vendor.base_url}missing"] == "expected_not_found"
    assert rows[f"{fake_vendor.base_url}gone"] == "not_found"
    assert rows[f"{fake_vendor.base_url}refused"] == "expected_refusal"


def test_not_a_member_lookups_of_a_bazaarvoice_pull_are_not_found_not_failed(site_admin, bazaarvoice_connection):
    kinds = bazaarvoice_simulator.generate(12, days=1)
    assert bazaarvoice.pull_reviews(bazaarvoice_connection).outcome.ok

    counted = outcomes(build_dashboard(site_admin))

    not_members = Review.objects.filter(outcome=Review.Outcome.NOT_MEMBER).count()
    assert not_members == kinds["not_member"] > 0
    assert counted["not_found"] == not_members  # Annex Cloud's AC1005 "no data" to each non-member's look-up
    assert "failed" not in counted and "uncertain" not in counted


def test_an_annex_cloud_refresh_of_someone_unknown_is_not_found(site_admin, annex_cloud_sandbox, client_a):
    member = MemberFactory(client=client_a, email="nobody@example.com", annex_cloud_id="")
    assert not annexcloud.refresh_member(member).ok  # "not a loyalty member at Annex Cloud"
    assert outcomes(build_dashboard(site_admin)) == {"not_found": 1}


def test_vibes_person_lookup_and_sessionm_verify_probes_are_answers(site_admin, vibes_sandbox, sessionm_sandbox):
    _, vibes = vibes_sandbox
    member = MemberFactory(client=vibes.client, annex_cloud_id="EXT1", phone="+14045551234")
    assert sync_person(member).ok  # PUT → 404 (no such person yet), then POST creates it
    sessionm = ConnectionFactory(
        client=vibes.client,
        vendor="sessionm",
        environment=Connection.Environment.SANDBOX,
        status=Connection.Status.DRAFT,
        secrets=dict(sessionm_simulator.DEMO_SECRETS),
        settings=dict(sessionm_simulator.DEMO_SETTINGS),
    )
    assert connections.verify(sessionm).ok  # campaigns of nobody → 404; Connect's wallet of nobody → refused

    assert outcomes(build_dashboard(site_admin)) == {"ok": 1, "not_found": 2, "refused": 1}


# --- Points net of reversals ---------------------------------------------------------------------------------------


def test_a_reversed_reviews_points_and_the_review_are_netted(site_admin, bazaarvoice_connection, admin_http):
    bazaarvoice_simulator.generate(7, days=1)  # reviewers 4, 5 and 6 are members: awarded
    bazaarvoice.pull_reviews(bazaarvoice_connection)
    awarded = list(Review.objects.filter(outcome=Review.Outcome.AWARDED))
    assert len(awarded) == 3
    reversed_review = awarded[0]

    assert bazaarvoice.reverse_award(reversed_review, site_admin, "Fake review").ok

    dashboard = build_dashboard(site_admin)
    standing = awarded[1:]
    assert chart(dashboard, "Points awarded").total == sum(review.points for review in standing)
    assert chart(dashboard, "Reviews rewarded").total == len(standing)
    # The chart's link lists exactly the reviews it counts: the reversed one is not among them.
    listed = admin_http.get(chart(dashboard, "Reviews rewarded").url).context["cl"].result_list
    assert sorted(review.pk for review in listed) == sorted(review.pk for review in standing)


def test_points_awarded_links_to_the_credits_that_still_stand(site_admin, bazaarvoice_connection, admin_http):
    bazaarvoice_simulator.generate(7, days=1)  # reviewers 4, 5 and 6 are members: awarded
    bazaarvoice.pull_reviews(bazaarvoice_connection)
    reversed_review, *standing = Review.objects.filter(outcome=Review.Outcome.AWARDED).order_by("pk")
    assert bazaarvoice.reverse_award(reversed_review, site_admin, "Fake review").ok

    points = chart(build_dashboard(site_admin), "Points awarded")

    credits = admin_http.get(points.url).context["cl"].result_list
    # The list adds up to the chart: the standing awards' credits, not the reversed one's, nor its debit.
    assert sorted(txn.key for txn in credits) == sorted(review.award_key for review in standing)
    assert sum(txn.points for txn in credits) == points.total == sum(review.points for review in standing)


def test_an_upgrade_marks_the_credits_of_awards_reversed_before_credits_kept_it(site_admin, bazaarvoice_connection):
    bazaarvoice_simulator.generate(7, days=1)  # reviewers 4, 5 and 6 are members: awarded
    bazaarvoice.pull_reviews(bazaarvoice_connection)
    reversed_review = Review.objects.filter(outcome=Review.Outcome.AWARDED).first()
    assert bazaarvoice.reverse_award(reversed_review, site_admin, "Fake review").ok
    PointsTransaction.objects.update(reversed_at=None)  # as an award reversed before the upgrade left it

    backfill = import_module("integrations.bazaarvoice.migrations.0003_mark_reversed_credits")
    backfill.mark_reversed_credits(django_apps, None)

    reversed_review.refresh_from_db()
    marked = PointsTransaction.objects.filter(reversed_at__isnull=False)
    assert [(txn.key, txn.activity, txn.reversed_at) for txn in marked] == [
        (reversed_review.award_key, "credit", reversed_review.reversed_at)
    ]  # the award's credit only: not the other awards', nor the debit that took the points back


def test_a_reversal_is_netted_in_the_hour_of_its_award(site_admin, bazaarvoice_connection):
    bazaarvoice_simulator.generate(5, days=1)  # reviewer 4 is a member: awarded
    bazaarvoice.pull_reviews(bazaarvoice_connection)
    review = Review.objects.get(outcome=Review.Outcome.AWARDED)
    five_hours_ago = timezone.now() - timedelta(hours=5)
    Review.objects.filter(pk=review.pk).update(updated_at=five_hours_ago)  # as if it were awarded then

    assert bazaarvoice.reverse_award(review, site_admin, "Fake review").ok

    bars = chart(build_dashboard(site_admin), "Points awarded").bars
    hour_label = f"{five_hours_ago.astimezone(timezone.get_current_timezone()):%H}h"
    then = next(bar for bar in bars if bar.label == hour_label)
    assert then.values["value"] == -review.points  # no bar of the window goes up for a reversal


# --- Axes and buckets ----------------------------------------------------------------------------------------------


def svg_of(html: str, title: str) -> str:
    return re.search(rf'<svg[^>]*aria-label="{title}".*?</svg>', html, re.S).group(0)


def test_every_bucket_of_the_window_is_drawn_with_a_scale_and_labels(admin_http, fake_vendor):
    for _ in range(3):
        call(fake_vendor, "/ok")

    day = svg_of(admin_http.get("/admin/?window=24h").content.decode(), "Vendor calls")
    week = svg_of(admin_http.get("/admin/?window=7d").content.decode(), "Vendor calls")

    assert day.count('class="bar-slot"') == 24 and week.count('class="bar-slot"') == 7  # the empty ones too
    ticks = re.findall(r'<text class="tick-label"[^>]*>([^<]+)</text>', day)
    assert ticks[0] == "0" and ticks[-1] == "5"  # 0 to a round value at or above the peak (3)
    hours = re.findall(r'class="bar-label"[^>]*>(\d\dh)</text>', day)
    assert len(hours) == 8 and len(set(hours)) == 8  # every third hour of the 24
    assert len(re.findall(r'class="bar-label"[^>]*>\w{3} \d\d</text>', week)) == 7
    assert re.search(r"<title>\d\dh: 3 ok</title>", day)  # each bucket says what it holds on hover


def test_an_empty_chart_still_has_its_buckets_and_a_scale(site_admin):
    messages = chart(build_dashboard(site_admin, "24h"), "Messages sent")
    assert len(messages.bars) == 24 and messages.total == 0
    assert [tick.label for tick in messages.ticks] == ["0", "1"]
    assert all(bar.summary.endswith(": 0") for bar in messages.bars)


# --- Links to the rows counted -------------------------------------------------------------------------------------


def link(html: str, css_class: str) -> str:
    return unescape(re.search(rf'<a href="([^"]+)" class="{css_class}[^"]*"', html).group(1))


def listed(admin_http, url: str) -> list[int]:
    response = admin_http.get(url)
    assert response.status_code == 200
    return sorted(row.pk for row in response.context["cl"].result_list)


def ids_of(path: str) -> list[int]:
    return sorted(VendorCall.objects.filter(url__endswith=path).values_list("pk", flat=True))


def test_the_failed_figure_and_each_outcome_link_to_exactly_the_calls_counted(admin_http, fake_vendor):
    for path, expected in [("/ok", None), ("/missing", NOT_FOUND_EXPECTED), ("/missing", NOT_FOUND_EXPECTED),
                           ("/gone", None), ("/broken", None), ("/refused", PROBE_REFUSED)]:  # fmt: skip
        call(fake_vendor, path, expected)
    # A failure of yesterday: its row and its count are outside the window.
    old = timezone.now() - timedelta(hours=30)
    VendorCall.objects.create(connection=fake_vendor, method="GET", url="x", status_code=500, error_type="unavailable")
    VendorCall.objects.filter(url="x").update(created_at=old)
    rollups.add([rollups.Tally(rollups.CALLS, "failed:unavailable", fake_vendor.client_id, fake_vendor.pk, hour=old)])

    html = admin_http.get("/admin/?window=24h").content.decode()

    failed = re.search(r'class="chart-alarm chart-alarm-on"[^>]*>(\d+) failed</a>', html).group(1)
    failures = listed(admin_http, link(html, "chart-alarm"))
    assert int(failed) == len(failures) == 2
    assert failures == ids_of("/gone") + ids_of("/broken")
    assert listed(admin_http, link(html, "legend-not_found")) == ids_of("/missing")
    assert len(listed(admin_http, link(html, "legend-refused"))) == 1
    assert len(listed(admin_http, link(html, "chart-title"))) == 6  # the whole chart: every call of the window
    query = parse_qs(urlsplit(link(html, "chart-alarm")).query)
    assert set(query) == {"outcome", "created_at__gte"}


def test_the_since_filter_says_the_list_is_cut_and_refuses_a_malformed_time(admin_http, fake_vendor):
    call(fake_vendor, "/ok")
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    calls = "/admin/integrations/vendorcall/"
    page = admin_http.get(calls, {"created_at__gte": since})
    assert page.context["cl"].has_active_filters and len(page.context["cl"].result_list) == 1
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert listed(admin_http, f"{calls}?{urlencode({'created_at__gte': later})}") == []
    bad = admin_http.get(calls, {"created_at__gte": "yesterday"})
    assert bad.status_code == 302 and "e=1" in bad["Location"]


def test_every_chart_links_to_its_list_cut_to_the_window(admin_http, site_admin):
    for window in ("24h", "7d"):
        for shown in build_dashboard(site_admin, window).charts:
            response = admin_http.get(shown.url)
            # A parameter the list does not support would redirect with ?e=1; the time filter shows as chosen.
            assert response.status_code == 200, shown.title
            assert response.context["cl"].has_active_filters, shown.title


def test_callbacks_received_links_to_exactly_the_deliveries_counted(admin_http, site_admin, connection_a):
    now = timezone.now()
    recent = [WebhookEventFactory(connection=connection_a, received_at=now - timedelta(minutes=m)) for m in (5, 50)]
    WebhookEventFactory(connection=connection_a, received_at=now - timedelta(hours=30))  # before the window
    rollups.roll_up_callbacks()

    callbacks = chart(build_dashboard(site_admin), "Callbacks received")

    assert callbacks.total == 2
    assert listed(admin_http, callbacks.url) == sorted(event.pk for event in recent)


def moved_back_a_day_and_more(series: str, rows: QuerySet, column: str) -> None:
    """What was just counted, as if it had happened 30 hours ago (before the 24 h window): the rows' time and their
    hourly counts moved back alike (each hour by the same 30 h, so no two rows of the counts meet)."""
    rows.update(**{column: F(column) - DAY_AND_MORE})
    for counted in Rollup.objects.filter(series=series).exclude(hour=rollups.ALL_TIME):
        counted.hour -= DAY_AND_MORE
        counted.save(update_fields=["hour"])


DAY_AND_MORE = timedelta(hours=30)


def test_messages_sent_links_to_exactly_the_messages_counted(admin_http, site_admin, sandbox_attentive_connection):
    template = MessageTemplateFactory(
        client=sandbox_attentive_connection.client, event_type="points_earned", connection=sandbox_attentive_connection
    )
    members = [MemberFactory(client=template.client, phone=f"+1770765{1750 + n}") for n in range(3)]
    for member in members[:2]:  # the third is not subscribed to TEXT: its messages are skipped
        ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")

    def events_sent(round_: str) -> None:
        for member in members:
            LoyaltyEventFactory(client=template.client, member=member, external_id=f"{round_}-{member.pk}",
                                event_type="points_earned", data={"points": 5})  # fmt: skip
        assert dispatch_messages()["sent"] == 2

    events_sent("yesterday")
    moved_back_a_day_and_more(rollups.MESSAGES, OutboundMessage.objects.all(), "sent_at")
    events_sent("today")

    messages = chart(build_dashboard(site_admin, "24h"), "Messages sent")

    counted = OutboundMessage.objects.filter(status="sent", event__external_id__startswith="today")
    assert messages.total == 2 == counted.count()
    assert listed(admin_http, messages.url) == sorted(message.pk for message in counted)  # not skipped, not earlier


def test_destinations_pushed_links_to_exactly_the_batches_counted(admin_http, site_admin, fo_simulator, content):
    def pushed(numbers: range, **fail: object) -> Push:
        members = [MemberFactory(client=content.client, phone=f"+1404555{n:04d}", opted_in=True) for n in numbers]
        push = first_orion.create_push(content, members=Member.objects.filter(pk__in=[m.pk for m in members]))
        fo_simulator.fail, fo_simulator.fail_times = str(fail.get("fail", "")), int(fail.get("times", 0))
        first_orion.run_push(push.pk)
        return push

    connect_first_orion(content.client, batch_size=2)
    earlier = pushed(range(3))
    moved_back_a_day_and_more(first_orion.PUSHED, PushBatch.objects.filter(push=earlier), "settled_at")
    today = pushed(range(3, 8), fail="lose", times=1)  # batches of 2, 2, 1: the first one's answer is lost

    destinations = chart(build_dashboard(site_admin, "24h"), "Branded-call destinations pushed")

    sent = PushBatch.objects.filter(push=today, status=PushBatch.Status.SENT)
    assert PushBatch.objects.filter(push=today, status=PushBatch.Status.UNCERTAIN).count() == 1
    assert destinations.total == sum(batch.size for batch in sent) == 3
    assert listed(admin_http, destinations.url) == sorted(batch.pk for batch in sent)


def test_hours_counted_before_outcomes_were_labelled_read_as_failures(site_admin, connection_a, client, settings):
    settings.METRICS_TOKEN = "scrape-token-1234567"
    earlier = [("ok", 3), ("timeout", 2), ("failed:timeout", 1), ("not_found", 4)]  # old kinds and new outcomes
    rollups.add([rollups.Tally(rollups.CALLS, kind, connection_a.client_id, connection_a.pk, n) for kind, n in earlier])

    assert outcomes(build_dashboard(site_admin)) == {"ok": 3, "failed": 3, "not_found": 4}
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-1234567").content.decode()
    labels = f'connection="{connection_a.pk}",error="timeout",outcome="failed",vendor="attentive"'
    assert f"portal_vendor_calls_total{{{labels}}} 3.0" in body  # one series, the old hours' and the new added up
