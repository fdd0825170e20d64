"""Issue 24: every time the admin shows names its zone, the viewer's ("Dec. 7, 2026, 4:41 a.m. EST")."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from tests.factories import ConnectionFactory, WebhookEventFactory

RECEIVED = datetime(2026, 12, 7, 9, 41, tzinfo=UTC)


@pytest.fixture
def event_in_new_york(client_a):
    client_a.time_zone = "America/New_York"
    client_a.save()
    return WebhookEventFactory(connection=ConnectionFactory(client=client_a), received_at=RECEIVED)


@pytest.mark.django_db
def test_a_list_and_a_record_page_show_the_time_in_the_viewers_zone_with_the_zone(event_in_new_york, alice_http):
    listing = alice_http.get(reverse("admin:integrations_webhookevent_changelist")).content.decode()
    record = alice_http.get(reverse("admin:integrations_webhookevent_change", args=[event_in_new_york.pk]))
    assert "Dec. 7, 2026, 4:41 a.m. EST" in listing
    assert "Dec. 7, 2026, 4:41 a.m. EST" in record.content.decode()


@pytest.mark.django_db
def test_a_viewer_of_clients_in_several_zones_reads_utc_named(event_in_new_york, client_b, admin_http):
    client_b.time_zone = "Europe/Paris"
    client_b.save()
    listing = admin_http.get(reverse("admin:integrations_webhookevent_changelist")).content.decode()
    assert "Dec. 7, 2026, 9:41 a.m. UTC" in listing


@pytest.mark.django_db
def test_the_viewers_zone_does_not_outlive_the_request(event_in_new_york, alice_http):
    from django.utils import timezone

    alice_http.get(reverse("admin:integrations_webhookevent_changelist"))
    assert timezone.get_current_timezone_name() == "UTC"  # nothing leaks past the request


@pytest.mark.django_db
def test_a_push_not_before_is_read_as_utc_as_its_help_says_whatever_the_viewers_zone(client_a):
    from django.utils import timezone

    from integrations.first_orion.admin import PushForm

    form = PushForm({"not_before": "2026-11-24 16:00"}, client_id=client_a.pk, site_admin=True)
    with timezone.override(ZoneInfo("America/New_York")):
        form.is_valid()
    assert form.cleaned_data["not_before"] == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def test_the_bazaarvoice_cursor_said_in_utc_stays_in_utc_for_a_viewer_elsewhere():
    from django.template.loader import render_to_string
    from django.utils import timezone

    cursor = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    with timezone.override(ZoneInfo("America/New_York")):
        page = render_to_string("admin/bazaarvoice/reread.html", {"cursor": cursor, "connection": "BV"})
    assert "<strong>2026-11-20 05:00:00 UTC</strong>" in page
