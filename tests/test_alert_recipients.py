"""Who hears of an alert (integrations/alerts.py): the site admins and ALERT_EMAILS; while the database is down,
ALERT_EMAILS alone (a PostgreSQL outage is exactly when callbacks are answered 503); an alert that reached nobody is
tried again after ALERT_RETRY_SECONDS rather than an hour later."""

from __future__ import annotations

import time

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import OperationalError, connection

from integrations.alerts import alert
from tests.factories import SiteAdminFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def database_down(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")


def test_an_alert_goes_to_the_site_admins_and_the_alert_addresses(settings):
    settings.ALERT_EMAILS = ["oncall@example.com"]
    SiteAdminFactory(email="admin@example.com")
    assert alert("k", "Callbacks answered 503", "The database is unreachable.")
    assert mail.outbox[-1].to == ["admin@example.com", "oncall@example.com"]


def test_while_the_database_is_down_the_alert_addresses_still_hear_of_it(settings):
    settings.ALERT_EMAILS = ["oncall@example.com"]
    SiteAdminFactory(email="admin@example.com")
    with connection.execute_wrapper(database_down):
        assert alert("k", "Callbacks answered 503", "The database is unreachable.")
    assert [message.to for message in mail.outbox] == [["oncall@example.com"]]


def test_an_alert_that_reached_nobody_is_tried_again_after_the_retry_window_not_the_throttles_hour(settings):
    settings.ALERT_EMAILS = []
    settings.ALERT_THROTTLE_SECONDS, settings.ALERT_RETRY_SECONDS = 3600, 1
    SiteAdminFactory(email="admin@example.com")
    with connection.execute_wrapper(database_down):
        assert not alert("k", "Callbacks answered 503", "The database is unreachable.")
    assert mail.outbox == []
    # Within the retry window the key still holds: no send attempt for each failing call meanwhile.
    assert not alert("k", "Callbacks answered 503", "The database is unreachable.")
    time.sleep(1.2)  # the retry window (1 s here) lapses; the throttle's hour would not have
    assert alert("k", "Callbacks answered 503", "The database is back.")
    assert mail.outbox[-1].to == ["admin@example.com"]
