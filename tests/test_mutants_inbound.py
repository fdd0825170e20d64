"""integrations/inbound.py's rules pinned for `make mutate`: which address delivered a callback, behind trusted
proxies or not (the IP allow-lists rely on it; anyone can write X-Forwarded-For)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection as db
from django.db import transaction
from django.test import RequestFactory
from django.urls import reverse

from integrations import inbound
from integrations.inbound import (
    Receipt,
    client_address,
    connection_for_inbound_token,
    handler_for,
    in_networks,
    process,
    process_received,
    receive,
    reprocess,
    schedule_processing,
)
from integrations.models import Connection, WebhookEvent
from integrations.vendors import VENDORS
from portal.celery import app as celery_app
from tests.factories import ConnectionFactory, WebhookEventFactory
from tests.meanwhile import at_query, statement
from tests.test_vibes_callbacks import ADDED

PROXIES = ["10.0.0.0/8", "127.0.0.1"]
Status = WebhookEvent.Status


def delivered_by(remote: str, forwarded: str | None = None) -> str:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_address(RequestFactory().post("/", REMOTE_ADDR=remote, **headers))


@pytest.mark.parametrize(
    ("remote", "forwarded", "address"),
    [
        ("127.0.0.1", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # the last hop before our proxies
        ("127.0.0.1", " 198.51.100.1 ,203.0.113.9 ,, 10.1.2.3 ", "203.0.113.9"),  # a client can prepend anything
        ("10.9.9.9", "10.0.0.1, 10.0.0.2", "10.9.9.9"),  # only proxies: the nearest one
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("203.0.113.5", "35.155.139.143", "203.0.113.5"),  # not behind a proxy: the header is not read
        ("127.0.0.1", "not-an-address", "not-an-address"),  # kept as given: no allow-list matches it
    ],
)
def test_the_delivering_address_is_the_last_one_before_the_trusted_proxies(settings, remote, forwarded, address):
    settings.TRUSTED_PROXIES = PROXIES
    assert delivered_by(remote, forwarded) == address


def test_networks_may_name_a_host_inside_them_and_anything_unreadable_is_outside():
    assert in_networks("10.200.1.1", ["10.1.2.3/8"])  # host bits set: still the /8
    assert not in_networks("11.0.0.1", ["10.0.0.0/8"])
    assert not in_networks("::1", ["127.0.0.0/8"]) and not in_networks("", PROXIES)
    assert in_networks("2001:db8::7", ["10.0.0.0/8", "2001:db8::/32"]) and not in_networks("10.0.0.1", [])


# --- Receiving: what a stored row keeps, the answers (survivors of receive, reject, store_event, json_object) ---

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vibes(client_a):
    return ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})


@pytest.fixture
def nothing_scheduled_here(monkeypatch):
    """A fresh process: it has queued no processing run yet (other tests' deliveries leave marks in the module)."""
    monkeypatch.setattr(inbound, "_scheduled_here", {})


def deliver(http, vibes, body: bytes | str, **headers):
    url = reverse("vibes-callback", args=[vibes.inbound_token])
    return http.post(url, body, content_type="application/json", **headers)


def test_a_stored_delivery_keeps_only_the_tracing_headers_and_its_receipt_names_its_row(vibes):
    headers = {"Content-Type": "application/json", "X-Request-Id": "req-7", "Authorization": "Basic c2VjcmV0"}
    receipt = receive(vibes, headers=headers, body=json.dumps(ADDED).encode(), remote_addr="203.0.113.9")
    event = WebhookEvent.objects.get()
    assert receipt == Receipt(200, "accepted", event)
    assert event.headers == {"Content-Type": "application/json", "X-Request-Id": "req-7"}  # no credentials kept
    assert (event.event_id, event.status, event.remote_addr) == ("AB234SDFD234", Status.RECEIVED, "203.0.113.9")


def test_a_duplicate_is_answered_200_and_kept_as_a_processed_duplicate(client, vibes):
    assert deliver(client, vibes, json.dumps(ADDED)).status_code == 200
    response = deliver(client, vibes, json.dumps(ADDED))
    assert (response.status_code, response.json()) == (200, {"detail": "duplicate: already received"})
    duplicate = WebhookEvent.objects.get(status=Status.DUPLICATE)
    assert duplicate.event_id is None and duplicate.processed_at is not None  # never waits for processing
    receipt = receive(
        vibes, headers={"Content-Type": "application/json"}, body=json.dumps(ADDED).encode(), remote_addr=None
    )
    assert receipt == Receipt(200, "duplicate: already received", WebhookEvent.objects.order_by("pk").last())


def test_a_duplicate_inside_a_transaction_leaves_the_transaction_usable(vibes):
    body = json.dumps(ADDED).encode()
    with transaction.atomic():  # as a management command replaying deliveries in one transaction would
        receive(vibes, headers={"Content-Type": "application/json"}, body=body, remote_addr=None)
        receipt = receive(vibes, headers={"Content-Type": "application/json"}, body=body, remote_addr=None)
    assert receipt.detail == "duplicate: already received"
    assert sorted(WebhookEvent.objects.values_list("status", flat=True)) == [Status.DUPLICATE, Status.RECEIVED]


def test_a_rejected_delivery_is_kept_processed_with_its_reason_and_the_body_without_nul(client, vibes):
    response = deliver(client, vibes, b'{"event_id": "a\x00b"}')
    assert (response.status_code, response.json()) == (400, {"detail": "Body contains NUL bytes."})
    event = WebhookEvent.objects.get()
    assert (event.status, event.error, event.body) == (
        Status.REJECTED,
        "Body contains NUL bytes.",
        '{"event_id": "a\ufffdb"}',
    )
    assert event.processed_at is not None  # nothing will ever process it
    receipt = receive(vibes, headers={"Content-Type": "application/json"}, body=b"[]", remote_addr=None)
    assert receipt == Receipt(400, "Body must be a JSON object.", WebhookEvent.objects.order_by("pk").last())


def test_a_delivery_nested_too_deeply_is_refused_with_the_vendors_words(client, vibes, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100_000
    response = deliver(client, vibes, "[" * 20_000 + "]" * 20_000)
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "Body is nested too deeply to be a Vibes callback."},
    )


def test_a_delivery_without_a_content_type_is_refused_saying_it_is_missing(vibes):
    receipt = receive(vibes, headers={}, body=json.dumps(ADDED).encode(), remote_addr=None)
    assert (receipt.status, receipt.detail) == (400, "Content-Type must be application/json, not missing.")


def test_a_body_of_exactly_the_limit_is_accepted(client, vibes, settings):
    body = json.dumps(ADDED)
    settings.WEBHOOK_MAX_BODY_BYTES = len(body.encode())
    assert deliver(client, vibes, body).status_code == 200
    assert WebhookEvent.objects.get().status == Status.RECEIVED


def test_a_request_without_a_remote_address_has_an_empty_one(settings):
    settings.TRUSTED_PROXIES = PROXIES
    request = RequestFactory().post("/")
    del request.META["REMOTE_ADDR"]
    assert client_address(request) == ""


def test_a_vendor_that_delivers_no_callbacks_has_no_handler_and_says_so():
    label = VENDORS["bazaarvoice"].label
    with pytest.raises(LookupError, match=rf"^{label} does not deliver callbacks\.$"):
        handler_for("bazaarvoice")


# --- Scheduling: one queued run per burst, the cache mark and its lifetime (survivors of schedule_processing) ---


def scheduled_key(connection: Connection) -> str:
    return f"webhooks:scheduled:{connection.pk}"


def queued_inbound_messages() -> list:
    """The task messages waiting on the in-memory broker's inbound queue (tests use `memory://`), taken off it."""
    messages = []
    with celery_app.connection_for_write() as conn:
        queue = conn.SimpleQueue("inbound")
        while queue.qsize():
            message = queue.get(timeout=1)
            message.ack()
            messages.append(message)
        queue.close()
    return messages


# Read the in-memory broker's queue and the local cache's expiry table: the SQLite run's settings (memory://, locmem).
# The PostgreSQL + Redis run covers the same path through the outage tests (tests/test_callbacks_outages.py).
on_the_embedded_broker_and_cache = pytest.mark.skipif(
    not celery_app.conf.broker_url.startswith("memory://")
    or not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"),
    reason="reads the embedded broker's queue and the local cache's expiry table",
)


@on_the_embedded_broker_and_cache
def test_a_delivery_queues_one_run_a_window_later_and_marks_it_in_the_cache_for_five_windows(
    client, vibes, nothing_scheduled_here
):
    queued_inbound_messages()  # what earlier tests left
    before = time.time()
    assert deliver(client, vibes, json.dumps(ADDED)).status_code == 200
    assert cache.get(scheduled_key(vibes)) is True
    expires_at = cache._expire_info[cache.make_key(scheduled_key(vibes))]  # locmem: when the mark lapses
    assert before + 5 * inbound.PROCESSING_WINDOW_SECONDS <= expires_at <= time.time() + 5
    [message] = queued_inbound_messages()
    assert message.headers["task"] == "integrations.process_received_callbacks"
    assert message.headers["eta"]  # counted down, so the burst's later deliveries are stored before it reads them


@on_the_embedded_broker_and_cache
def test_this_process_skips_the_cache_for_half_a_window_after_queueing(vibes, nothing_scheduled_here):
    before = time.monotonic()
    schedule_processing(vibes.pk)
    after = time.monotonic()
    skip_until = inbound._scheduled_here[vibes.pk]
    assert before + inbound.PROCESSING_WINDOW_SECONDS / 2 <= skip_until <= after + inbound.PROCESSING_WINDOW_SECONDS / 2
    schedule_processing(vibes.pk)  # within the half window: nothing to do, nothing fails
    assert len(queued_inbound_messages()) == 1


@pytest.fixture
def broker_down(monkeypatch):
    """No broker listens (as tests/test_work_survives.py does): Celery reads the URL from the environment."""
    timeout = celery_app.conf.broker_connection_timeout
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:9/0")
    celery_app.conf.broker_connection_timeout = 0.5
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    yield
    monkeypatch.undo()
    celery_app.conf.broker_connection_timeout = timeout
    celery_app._pool, celery_app.amqp._producer_pool = None, None


def test_with_the_broker_down_the_mark_is_removed_and_the_sweep_is_announced(
    client, vibes, broker_down, nothing_scheduled_here, caplog
):
    with caplog.at_level(logging.WARNING, logger="integrations.inbound"):
        assert deliver(client, vibes, json.dumps(ADDED)).status_code == 200
    assert cache.get(scheduled_key(vibes)) is None  # the next delivery tries to queue again
    assert [r.getMessage() for r in caplog.records if r.name == "integrations.inbound"] == [
        f"Could not queue callback processing for connection {vibes.pk}; the sweep will."
    ]


def test_with_the_cache_down_the_warning_is_logged_and_the_delivery_stored(client, vibes, settings, caplog):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    with caplog.at_level(logging.WARNING, logger="integrations.inbound"):
        assert deliver(client, vibes, json.dumps({**ADDED, "event_id": "cache-down"})).status_code == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "integrations.inbound"]
    assert messages == [f"Could not queue callback processing for connection {vibes.pk}; the sweep will."]


# --- Processing: what is applied, what is counted (survivors of process_received, process, reprocess) ---------


def unappliable(connection: Connection, event_id: str) -> WebhookEvent:
    """A stored Vibes callback its handler cannot apply (no subscription in it: as stored by an older version)."""
    body = json.dumps(
        {"event_id": event_id, "callback_type": "subscription_added", "event_date": "2017-02-15T15:42:23Z"}
    )
    return WebhookEventFactory(connection=connection, event_id=event_id, event_type="subscription_added", body=body)


def test_a_run_applies_the_waiting_events_of_its_connection_only_and_counts_each_outcome(vibes, client_b):
    other = ConnectionFactory(client=client_b, vendor="vibes", secrets={}, settings={"company_key": "b"})
    applied = [WebhookEventFactory(connection=vibes, event_id=f"ok-{n}") for n in range(3)]
    broken = unappliable(vibes, "broken")
    failed_before = WebhookEventFactory(connection=vibes, event_id="failed-before", status=Status.FAILED)
    elsewhere = WebhookEventFactory(connection=other, event_id="elsewhere")
    assert process_received(vibes.pk, limit=2) == {"processed": 3, "failed": 1, "skipped": 0}
    assert {e.status for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in applied])} == {Status.PROCESSED}
    broken.refresh_from_db()
    assert broken.status == Status.FAILED and broken.error == "KeyError: 'subscription'"
    assert "Traceback" in broken.traceback
    # A failed event waits for a reprocess, and another connection's for its own run.
    assert WebhookEvent.objects.get(pk=failed_before.pk).status == Status.FAILED
    assert WebhookEvent.objects.get(pk=elsewhere.pk).status == Status.RECEIVED
    assert process_received(vibes.pk) == {"processed": 0, "failed": 0, "skipped": 0}


def test_a_run_for_a_client_applies_only_that_clients_events_and_the_sweep_all(vibes, client_b):
    other = ConnectionFactory(client=client_b, vendor="vibes", secrets={}, settings={"company_key": "b"})
    WebhookEventFactory(connection=vibes, event_id="a")
    WebhookEventFactory(connection=other, event_id="b")
    assert process_received(client_id=client_b.pk) == {"processed": 1, "failed": 0, "skipped": 0}
    assert WebhookEvent.objects.get(event_id="a").status == Status.RECEIVED
    assert process_received() == {"processed": 1, "failed": 0, "skipped": 0}


def test_a_run_clears_the_scheduled_marks_even_when_this_process_queued_nothing(vibes, nothing_scheduled_here):
    cache.set(scheduled_key(vibes), True)
    assert process_received(vibes.pk) == {"processed": 0, "failed": 0, "skipped": 0}
    assert cache.get(scheduled_key(vibes)) is None


def test_an_event_already_processed_is_not_applied_again_even_with_others_waiting(vibes):
    done = WebhookEventFactory(connection=vibes, event_id="done", status=Status.PROCESSED, error="applied once")
    WebhookEventFactory(connection=vibes, event_id="waiting")
    assert process(done) is False
    done.refresh_from_db()
    assert (done.status, done.error) == (Status.PROCESSED, "applied once")
    assert WebhookEvent.objects.get(event_id="waiting").status == Status.RECEIVED


def test_reprocess_runs_failed_events_again_and_counts_what_fails_again(vibes):
    broken = [unappliable(vibes, f"broken-{n}") for n in range(2)]
    fixed = WebhookEventFactory(connection=vibes, event_id="fixed", status=Status.FAILED)
    done = WebhookEventFactory(connection=vibes, event_id="done", status=Status.PROCESSED)
    for event in broken:
        event.status = Status.FAILED
        event.save()
    assert reprocess(WebhookEvent.objects.all()) == {"processed": 1, "failed": 2}
    assert WebhookEvent.objects.get(pk=fixed.pk).status == Status.PROCESSED
    assert WebhookEvent.objects.get(pk=done.pk).status == Status.PROCESSED


# --- Finding the connection of a callback URL (survivors of connection_for_inbound_token) ---------------------


def test_a_callback_token_finds_its_own_vendors_connection_without_its_secrets(vibes, client_b):
    other = ConnectionFactory(client=client_b, vendor="vibes", secrets={}, settings={"company_key": "b"})
    found = connection_for_inbound_token("vibes", vibes.inbound_token)
    assert found == vibes and "secrets" in found.get_deferred_fields()
    assert connection_for_inbound_token("vibes", other.inbound_token) == other  # each token its own entry
    assert connection_for_inbound_token("attentive", vibes.inbound_token) is None  # another vendor's URL


def test_a_token_is_resolved_from_memory_for_a_few_seconds(vibes):
    assert connection_for_inbound_token("vibes", vibes.inbound_token) == vibes
    # Changed without a save signal (another process): this process answers from memory until the TTL lapses.
    Connection.objects.filter(pk=vibes.pk).update(inbound_token="moved-elsewhere")
    assert connection_for_inbound_token("vibes", vibes.inbound_token) == vibes
    assert connection_for_inbound_token("vibes", vibes.inbound_token) == vibes


def test_events_another_processor_applies_after_this_runs_read_are_counted_skipped_not_applied_twice(vibes):
    """Two processors read the same waiting events; the other (its own connection, let in by a wrapper around this
    one's queries just after its read) applies them first. This run claims none of them and counts each skipped."""
    events = [WebhookEventFactory(connection=vibes, event_id=f"race-{n}") for n in range(3)]
    theirs: list[dict[str, int]] = []

    def another_processor() -> None:
        theirs.append(process_received(vibes.pk))

    # Just after this run read the waiting events.
    with db.execute_wrapper(at_query(statement("SELECT", "integrations_webhookevent"), another_processor, after=True)):
        mine = process_received(vibes.pk)

    assert theirs == [{"processed": 3, "failed": 0, "skipped": 0}]
    assert mine == {"processed": 0, "failed": 0, "skipped": 3}
    assert {e.status for e in WebhookEvent.objects.filter(pk__in=[e.pk for e in events])} == {Status.PROCESSED}


def test_a_row_another_processor_holds_is_skipped_at_once_not_waited_for(vibes):
    """PostgreSQL's row locks (SQLite has none): while another processor holds an event's row, this one skips it
    instead of waiting — and does not apply it once the other lets go."""
    if db.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    event = WebhookEventFactory(connection=vibes, event_id="held")
    held, release = threading.Event(), threading.Event()

    def another_processor_holds_the_row() -> None:
        try:
            with transaction.atomic():
                list(WebhookEvent.objects.select_for_update().filter(pk=event.pk))
                held.set()
                release.wait(10)
        finally:
            db.close()

    holder = threading.Thread(target=another_processor_holds_the_row)
    holder.start()
    assert held.wait(10)
    try:
        applied = process(event)
    finally:
        release.set()
        holder.join()

    assert applied is False and WebhookEvent.objects.get(pk=event.pk).status == Status.RECEIVED


@pytest.fixture
def counting_broker(monkeypatch):
    """A "broker" that takes each connection and drops it at once, counting them: how many times a publish tried."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def take_and_drop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed at the end of the test
            accepted.append(1)
            conn.close()

    threading.Thread(target=take_and_drop, daemon=True).start()
    timeout = celery_app.conf.broker_connection_timeout
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
    celery_app.conf.broker_connection_timeout = 0.5
    celery_app._pool, celery_app.amqp._producer_pool = None, None
    yield accepted
    listener.close()
    monkeypatch.undo()
    celery_app.conf.broker_connection_timeout = timeout
    celery_app._pool, celery_app.amqp._producer_pool = None, None


def test_with_the_broker_failing_a_delivery_tries_to_queue_its_processing_once_and_goes_on(
    vibes, counting_broker, nothing_scheduled_here
):
    """The callback is answered while its processing is queued: with the broker failing it is not held up by
    Celery's publish retries (the minute sweep applies it). The connections of one publish attempt (two: kombu
    connects, then publishes on a connection of its own), where Celery's retries make four."""
    schedule_processing(vibes.pk)
    deadline = time.monotonic() + 5
    while len(counting_broker) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the listener counts in its own thread
    time.sleep(0.3)  # and would count a retry's connection by now
    assert len(counting_broker) == 2
