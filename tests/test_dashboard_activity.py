"""The dashboard's connection cards (what to do next, with the exact form) and its activity charts (read from the
hourly rollups kept as calls are recorded, per hour or per day, scoped to the viewer's clients)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations import rollups
from integrations.connections import ConnectionCallLog
from integrations.http import CallRecord
from integrations.models import Connection
from members.models import PointsTransaction
from portal.dashboard import CLIENTS_SHOWN, build_dashboard
from tests.factories import ClientFactory, ConnectionFactory, OutboundMessageFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db


def call(connection: Connection, *, status: int | None = 200, latency: int = 50, hours_ago: float = 0, error=""):
    """A call recorded as the HTTP layer records it (its row and its rollups); one of the past is counted in the
    hour it happened, as it was then."""
    record = CallRecord("GET", "https://example.test/x", 1, {}, "", status, "", latency, error)
    if hours_ago:
        hour = timezone.now() - timedelta(hours=hours_ago)
        outcome = rollups.call_outcome(record)
        rollups.add([rollups.Tally(rollups.CALLS, outcome, connection.client_id, connection.pk, hour=hour)])
        return
    ConnectionCallLog(connection).record(record)


def chart(dashboard, title):
    return next(chart for chart in dashboard.charts if chart.title == title)


def test_a_draft_attentive_card_links_to_its_activation_page_and_a_working_one_says_nothing_to_do(site_admin, client_a):
    ConnectionFactory(client=client_a, vendor="attentive", status=Connection.Status.DRAFT)
    ConnectionFactory(client=client_a, vendor="vibes", status=Connection.Status.ACTIVE)
    cards = {card.connection.vendor: card for card in build_dashboard(site_admin).clients[0].cards}
    assert cards["attentive"].next_url == reverse("admin:integrations_client_attentive", args=[client_a.pk])
    assert "Save and verify" in cards["attentive"].next_step
    assert cards["vibes"].next_url == "" and "Nothing to do" in cards["vibes"].next_step


def test_vendor_calls_are_counted_per_hour_by_outcome_with_their_p95_latency(site_admin, client_a):
    connection = ConnectionFactory(client=client_a, vendor="vibes")
    for latency in range(1, 101):  # 100 answered calls, 1..100 ms
        call(connection, latency=latency)
    call(connection, status=500, error="server_error")
    call(connection, status=None, error="timeout")
    call(connection, hours_ago=30)  # outside the 24-hour window
    dashboard = build_dashboard(site_admin, "24h")
    calls = chart(dashboard, "Vendor calls")
    assert len(calls.bars) == 24
    assert sum(bar.values["ok"] for bar in calls.bars) == 100
    assert sum(bar.values["failed"] for bar in calls.bars) == 2
    latency = chart(dashboard, "p95 latency of vendor calls")
    assert 94 <= max(bar.values["value"] for bar in latency.bars) <= 100
    week = build_dashboard(site_admin, "7d")
    assert len(chart(week, "Vendor calls").bars) == 7
    assert sum(bar.total for bar in chart(week, "Vendor calls").bars) == 103


def test_a_client_user_sees_only_their_clients_activity(user_a, client_a, client_b):
    call(ConnectionFactory(client=client_a, vendor="vibes"))
    call(ConnectionFactory(client=client_b, vendor="vibes"))
    assert chart(build_dashboard(user_a), "Vendor calls").total == 1


def test_charts_are_drawn_as_svg_without_inline_style(admin_http, client_a):
    call(ConnectionFactory(client=client_a, vendor="vibes"))
    html = admin_http.get("/admin/?window=7d").content.decode()
    assert html.count("<svg") >= 5
    assert re.search(r'<rect class="bar-ok" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[1-9][\d.]*"', html)
    assert " style=" not in html


def test_a_client_users_cards_link_to_the_connection_form_they_may_use(user_a, client_a):
    draft = ConnectionFactory(client=client_a, vendor="attentive", status=Connection.Status.DRAFT)
    card = build_dashboard(user_a).clients[0].cards[0]
    assert card.next_url == reverse("admin:integrations_connection_change", args=[draft.pk])


def test_messages_callbacks_and_points_are_charted_for_the_viewers_clients(user_a, client_a, client_b):
    for client in (client_a, client_b):
        message = OutboundMessageFactory(template__client=client, status="sent", sent_at=timezone.now())
        rollups.message_settled(message, "sent")  # as members.messaging.finish counts a send
        WebhookEventFactory(connection=message.connection, received_at=timezone.now() - timedelta(minutes=5))
        txn = PointsTransaction.objects.create(
            client=client, member=message.member, key=f"k-{client.pk}", activity="credit", points=40,
            action_id="100", status="applied",
        )  # fmt: skip
        rollups.points_settled(txn)  # as annexcloud.flows.settle counts a settled transaction
    rollups.roll_up_callbacks()
    charts = {chart.title: chart.total for chart in build_dashboard(user_a).charts}
    assert (charts["Messages sent"], charts["Callbacks received"], charts["Points awarded"]) == (1, 1, 40)


def test_with_many_clients_the_dashboard_shows_every_client_needing_attention_and_links_to_the_rest(
    admin_http, site_admin
):
    """30 clients (the close read's 47,716 px page): every client with a connection that is not active, or none,
    is shown; the others up to CLIENTS_SHOWN; the rest are counted and linked."""
    healthy = [ClientFactory(name=f"Healthy {n:02d}") for n in range(28)]
    for client in healthy:
        ConnectionFactory(client=client, vendor="attentive", status=Connection.Status.ACTIVE)
    failing = ClientFactory(name="Zeta Failing")
    ConnectionFactory(client=failing, vendor="vibes", status=Connection.Status.FAILING)
    ConnectionFactory(client=failing, vendor="attentive", status=Connection.Status.ACTIVE)
    bare = ClientFactory(name="Zulu Without Connections")

    dashboard = build_dashboard(site_admin)
    shown = [entry.client for entry in dashboard.clients]
    assert shown[:2] == [failing, bare]  # needing attention, whatever their names
    assert shown[2:] == healthy[: CLIENTS_SHOWN - 2]
    assert dashboard.more_clients == 30 - CLIENTS_SHOWN
    page = re.sub(r"\s+", " ", admin_http.get(reverse("admin:index")).content.decode())
    assert f"And {30 - CLIENTS_SHOWN} more clients, their connections all active." in page
    assert f'href="{reverse("admin:integrations_client_changelist")}">All clients</a>' in page
    assert "Healthy 27" not in page


def test_charts_are_in_utc_when_the_clients_are_in_several_zones_whatever_their_names(site_admin):
    """The zones are read without the clients' ordering by name: two New York clients named first hid a third's UTC."""
    for name, zone in (("Alpha", "America/New_York"), ("Bravo", "America/New_York"), ("Charlie", "UTC")):
        ClientFactory(name=name, time_zone=zone)
    assert build_dashboard(site_admin).time_zone == "UTC"
    ClientFactory._meta.model.objects.filter(name="Charlie").update(time_zone="America/New_York")
    assert build_dashboard(site_admin).time_zone == "America/New_York"
