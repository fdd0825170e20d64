"""seed_demo (run by every `make run`): idempotent, and the next step it prints matches the demo's real state — a
second run never says Attentive is "still draft" once it is active."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from integrations.models import Client, Connection
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
