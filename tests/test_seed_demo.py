"""seed_demo (run by every `make run`): idempotent, and the next step it prints matches the demo's real state — a
second run never says Attentive is "still draft" once it is active."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from integrations.models import Client, Connection
from integrations.vibes import sandbox as vibes_simulator
from members.models import Member

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_a_second_run_changes_nothing_and_tells_the_real_next_step(settings):
    settings.DEBUG = True
    first = seed()
    assert "still draft" in first and "Activate Attentive" in first
    counts = (Client.objects.count(), Connection.objects.count(), Member.objects.count())
    Connection.objects.filter(vendor="attentive").update(status=Connection.Status.ACTIVE)
    second = seed()
    assert (Client.objects.count(), Connection.objects.count(), Member.objects.count()) == counts
    assert "draft" not in second and "Attentive is active" in second
    assert len(second.strip().splitlines()) == 2  # quiet: the demo's summary and the next step


def test_a_failing_attentive_connection_is_named_with_its_reason(settings):
    settings.DEBUG = True
    seed()
    Connection.objects.filter(vendor="attentive").update(status="failing", last_check_result="Attentive said 401")
    assert "failing (Attentive said 401)" in seed()


def test_a_demo_connection_holding_a_retired_demo_secret_gets_todays(settings):
    """The Vibes demo retired the username "sandbox" (redaction blanked that word everywhere): a demo connection
    still holding it gets today's; a production connection keeps what its admin entered."""
    settings.DEBUG = True
    seed()
    demo = Connection.objects.get(vendor="vibes")
    demo.secrets = {**demo.secrets, "api_username": "sandbox"}
    demo.save()
    production = Connection.objects.create(
        client=Client.objects.create(name="Live", slug="live"),
        vendor="vibes",
        environment=Connection.Environment.PRODUCTION,
        secrets={"api_username": "sandbox", "api_password": "their-own-password"},
    )
    seed()
    demo.refresh_from_db()
    production.refresh_from_db()
    assert demo.secrets["api_username"] == vibes_simulator.USERNAME != "sandbox"
    assert production.secrets["api_username"] == "sandbox"
