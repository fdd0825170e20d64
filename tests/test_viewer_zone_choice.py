"""Issue 24: the viewer chooses the zone the admin shows times in ("Time zone" in the header), kept for their session;
"client's zone" (the default) goes back to the client's zone, or UTC for a viewer of clients in several zones."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from members.models import Member
from portal import zones
from tests.factories import ConnectionFactory, MemberFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2026, 12, 7, 9, 41, tzinfo=UTC)
EVENTS = reverse("admin:integrations_webhookevent_changelist")
CHOOSE = reverse("admin:choose_zone")


@pytest.fixture
def event_in_new_york(client_a):
    client_a.time_zone = "America/New_York"
    client_a.save()
    return WebhookEventFactory(connection=ConnectionFactory(client=client_a), received_at=RECEIVED)


def choose(http, zone: str, next_url: str = EVENTS):
    return http.post(CHOOSE, {"zone": zone, "next": next_url}, follow=True)


def test_a_chosen_zone_is_kept_for_the_session_and_a_list_shows_times_there(event_in_new_york, alice_http):
    assert "Dec. 7, 2026, 4:41 a.m. EST" in alice_http.get(EVENTS).content.decode()  # the client's zone

    page = choose(alice_http, "Europe/Paris")

    assert page.redirect_chain == [(EVENTS, 302)]  # back where the viewer chose it
    assert alice_http.session[zones.CHOSEN_ZONE] == "Europe/Paris"
    listing = page.content.decode()
    assert "Dec. 7, 2026, 10:41 a.m. CET" in listing and "4:41 a.m. EST" not in listing
    # The header says which zone the times are in, the chosen one selected.
    assert '<option value="Europe/Paris" selected>' in listing


def test_the_clients_zone_is_the_default_and_choosing_it_forgets_the_choice(event_in_new_york, alice_http):
    first = alice_http.get(EVENTS).content.decode()
    assert '<option value="" selected>Client\'s zone (America/New_York)</option>' in first

    choose(alice_http, "Asia/Tokyo")
    page = choose(alice_http, "")

    assert zones.CHOSEN_ZONE not in alice_http.session
    assert "Dec. 7, 2026, 4:41 a.m. EST" in page.content.decode()


def test_an_unknown_zone_is_refused_in_words_and_nothing_is_stored(event_in_new_york, alice_http):
    choose(alice_http, "Asia/Tokyo")

    page = choose(alice_http, "Mars/Olympus")

    assert alice_http.session[zones.CHOSEN_ZONE] == "Asia/Tokyo"  # the earlier choice stands
    text = html.unescape(page.content.decode())
    assert "'Mars/Olympus' is not a time zone: choose one from the list" in text
    assert "Dec. 7, 2026, 6:41 p.m. JST" in text


def test_only_a_post_chooses_and_the_way_back_stays_on_the_portal(event_in_new_york, alice_http):
    assert alice_http.get(CHOOSE, {"zone": "Asia/Tokyo"}).status_code == 405
    assert zones.CHOSEN_ZONE not in alice_http.session
    page = alice_http.post(CHOOSE, {"zone": "Asia/Tokyo", "next": "https://elsewhere.example/"})
    assert page["Location"] == reverse("admin:index")


def test_a_viewer_of_several_zones_chooses_one_instead_of_utc(event_in_new_york, client_b, admin_http):
    client_b.time_zone = "Europe/Paris"
    client_b.save()
    assert "Dec. 7, 2026, 9:41 a.m. UTC" in admin_http.get(EVENTS).content.decode()

    page = choose(admin_http, "America/Los_Angeles").content.decode()

    assert "Dec. 7, 2026, 1:41 a.m. PST" in page


def test_the_member_timeline_reads_in_the_chosen_zone(client_a, alice_http):
    client_a.time_zone = "America/New_York"
    client_a.save()
    member = MemberFactory(client=client_a)
    Member.objects.filter(pk=member.pk).update(created_at=RECEIVED)  # "Joined the program", on the timeline
    timeline = reverse("admin:members_member_timeline", args=[member.pk])
    assert "2026-12-07 04:41:00 EST" in alice_http.get(timeline).content.decode()

    page = choose(alice_http, "Asia/Kolkata", timeline).content.decode()

    assert 'Times in <strong id="timeline-zone">Asia/Kolkata</strong>' in page
    assert "2026-12-07 15:11:00 IST" in page and "EST" not in page


def test_the_dashboards_charts_are_bucketed_in_the_chosen_zone(event_in_new_york, alice_http):
    assert "(America/New_York)" in alice_http.get(reverse("admin:index")).content.decode()

    page = choose(alice_http, "Asia/Kolkata", reverse("admin:index")).content.decode()

    assert "(Asia/Kolkata)" in page and "(America/New_York)" not in page.split('id="content"')[1]
