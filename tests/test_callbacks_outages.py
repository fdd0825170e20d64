"""A delivery once stored is answered 2xx whatever fails after it (the cache, the broker); while the database is
down nothing can be stored, and the vendor is told to send it again later (503 with Retry-After), never a bare 500."""

from __future__ import annotations

import json

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.urls import reverse

from integrations.models import WebhookEvent
from tests.factories import ConnectionFactory
from tests.test_vibes_callbacks import ADDED

pytestmark = pytest.mark.django_db(transaction=True)

# Nothing listens on the discard port: every call to this cache or broker fails, as when Redis is down.
REDIS_DOWN = "redis://127.0.0.1:9/0"
CALLBACK = ADDED  # Vibes' documented subscription_added, event id AB234SDFD234


@pytest.fixture
def vibes(client_a):
    return ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})


def deliver(http, vibes, body: bytes | str):
    return http.post(reverse("vibes-callback", args=[vibes.inbound_token]), body, content_type="application/json")


def test_with_the_cache_and_broker_down_a_stored_delivery_is_answered_2xx(client, vibes, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_DOWN}}
    response = deliver(client, vibes, json.dumps(CALLBACK))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    # Not processed yet: nothing could queue it; the minute sweep applies it.
    assert (event.event_id, event.status) == ("AB234SDFD234", WebhookEvent.Status.RECEIVED)


def database_down(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")


def connection_closed(execute, sql, params, many, context):
    # A connection the server closed under Django: InterfaceError, which is no DatabaseError.
    raise InterfaceError("connection already closed")


@pytest.mark.parametrize("outage", [database_down, connection_closed], ids=["unreachable", "connection closed"])
def test_with_the_database_down_the_vendor_is_asked_to_send_again_later(client, vibes, settings, outage):
    vibes_token = vibes.inbound_token
    settings.WEBHOOK_RETRY_AFTER_SECONDS = 17
    with connection.execute_wrapper(outage):
        response = client.post(
            reverse("vibes-callback", args=[vibes_token]), json.dumps(CALLBACK), content_type="application/json"
        )
    assert response.status_code == 503 and response["Retry-After"] == "17"
    assert "send this one again later" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    # Once the database is back, the same delivery is stored and accepted.
    assert deliver(client, vibes, json.dumps(CALLBACK)).status_code == 200
    assert WebhookEvent.objects.get().event_id == "AB234SDFD234"


def test_an_oversized_delivery_is_answered_413_and_kept_truncated(client, vibes, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    response = deliver(client, vibes, json.dumps({**CALLBACK, "padding": "x" * 5000}))
    assert response.status_code == 413 and "larger than 1000 bytes" in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.REJECTED and len(event.body) == 1000


class CountingCache:
    """The cache, counting the round trips a delivery costs it."""

    def __init__(self, cache) -> None:
        self.cache, self.adds = cache, 0

    def add(self, *args, **kwargs):
        self.adds += 1
        return self.cache.add(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.cache, name)


def test_a_burst_of_deliveries_costs_the_cache_one_round_trip_not_one_each(client, vibes, monkeypatch):
    from django.core.cache import cache

    from integrations import inbound

    counting = CountingCache(cache)
    monkeypatch.setattr(inbound, "cache", counting)
    monkeypatch.setattr(inbound, "_scheduled_here", {})
    for n in range(5):
        assert deliver(client, vibes, json.dumps({**ADDED, "event_id": f"burst-{n}"})).status_code == 200
    assert counting.adds == 1
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED).count() == 5  # the queued run applies them
