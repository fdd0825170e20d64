"""Vibes callbacks: stored raw first, answered 2xx once stored, applied once per event_id (also for two copies at the
same instant), in event_date order, matched to members (or kept until they appear), and bad deliveries refused with a
clear 400 while kept for inspection."""

from __future__ import annotations

import base64
import copy
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection as db
from django.test import Client as HttpClient
from django.urls import reverse

from integrations.models import WebhookEvent
from integrations.vibes import flows
from integrations.vibes.flows import match_unmatched, person_id_of
from integrations.vibes.models import VibesListSubscription
from tests.factories import ConnectionFactory, MemberFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db(transaction=True)

ADDED = {
    "event_id": "AB234SDFD234",
    "callback_type": "subscription_added",
    "event_type": "subscription_added",
    "event_date": "2017-02-15T15:42:23Z",
    "delivery_attempt": "1",
    "subscription": {
        "person": {"id": "ABC123", "external_id": "ex1234", "url": "/companies/:company_key/mobiledb/persons/ABC123"},
        "subscription_list": {"id": "1234", "url": "/companies/:company_key/mobiledb/subscription_lists/1234"},
        "opt_in_date": "2017-01-15T15:34:52Z",
        "acquisition_campaign": {"id": "2342312", "url": "/companies/:company_key/campaigns/acquisition/2342312"},
        "url": "/companies/:company_key/mobiledb/persons/ABC123/subscriptions/1234",
    },
}
REMOVED = {
    **copy.deepcopy(ADDED),
    "callback_id": "DEF124",
    "event_id": "AB234SDFD235",
    "callback_type": "subscription_removed",
    "event_type": "subscription_removed",
    "event_date": "2017-03-15T15:42:23Z",
}
REMOVED["subscription"].update(opt_out_date="2017-02-18T15:34:52+0000", opt_out_reason="user_opt_out")
# The first example of Vibes' callback documentation, verbatim in its fault: `"callback:id","DEF123"` is not JSON.
DOCUMENTED_INVALID = '{\n   "callback:id","DEF123",\n   "event_id":"AB234SDFD234"\n}'


@pytest.fixture
def vibes(client_a, eager_celery):
    return ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})


@pytest.fixture
def member(client_a):
    return MemberFactory(client=client_a, annex_cloud_id="ex1234", phone="+12995551234")


def deliver(http, vibes, payload, content_type="application/json", **extra):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return http.post(reverse("vibes-callback", args=[vibes.inbound_token]), body, content_type=content_type, **extra)


def test_subscription_added_is_stored_raw_and_applied_to_the_member(client, vibes, member):
    response = deliver(client, vibes, ADDED)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert json.loads(event.body) == ADDED and event.remote_addr == "127.0.0.1"
    assert event.status == "processed" and event.event_id == "AB234SDFD234"
    state = VibesListSubscription.objects.get()
    assert (state.member, state.state, state.list_id, state.acquisition_campaign_id) == (
        member,
        "subscribed",
        "1234",
        "2342312",
    )
    assert state.opt_in_date.isoformat() == "2017-01-15T15:34:52+00:00"
    member.refresh_from_db()
    assert person_id_of(member) == "ABC123"


def test_subscription_removed_records_date_and_reason(client, vibes, member):
    deliver(client, vibes, ADDED)
    deliver(client, vibes, REMOVED)
    state = VibesListSubscription.objects.get()
    assert (state.state, state.opt_out_reason) == ("unsubscribed", "user_opt_out")
    assert state.opt_out_date.isoformat() == "2017-02-18T15:34:52+00:00"


def test_a_date_without_an_offset_is_read_as_utc(client, vibes, member):
    # parse_vibes_datetime named django.utils.timezone.UTC, which does not exist: such a delivery failed to apply.
    naive = {**ADDED, "event_date": "2017-02-15T15:42:23", "subscription": {**ADDED["subscription"]}}
    naive["subscription"]["opt_in_date"] = "2017-01-15T15:34:52"
    assert deliver(client, vibes, naive).status_code == 200
    assert WebhookEvent.objects.get().status == "processed"
    state = VibesListSubscription.objects.get()
    assert (state.member, state.state) == (member, "subscribed")
    assert state.opt_in_date.isoformat() == "2017-01-15T15:34:52+00:00"
    assert state.last_event_date.isoformat() == "2017-02-15T15:42:23+00:00"


def test_duplicates_are_answered_2xx_and_applied_once(client, vibes, member):
    assert deliver(client, vibes, ADDED).status_code == 200
    again = deliver(client, vibes, ADDED)
    assert again.status_code == 200 and "duplicate" in again.json()["detail"]
    assert list(WebhookEvent.objects.order_by("pk").values_list("status", flat=True)) == ["processed", "duplicate"]


def test_an_older_removal_arriving_late_does_not_unsubscribe(client, vibes, member):
    newer_added = {**ADDED, "event_id": "later-optin", "event_date": "2017-04-01T00:00:00Z"}
    deliver(client, vibes, newer_added)
    deliver(client, vibes, REMOVED)  # dated 2017-03-15: older than the opt-in already applied
    assert VibesListSubscription.objects.get().state == "subscribed"
    assert WebhookEvent.objects.get(event_id=REMOVED["event_id"]).status == "ignored"


def test_an_older_opt_in_arriving_late_does_not_resubscribe(client, vibes, member):
    deliver(client, vibes, REMOVED)
    deliver(client, vibes, ADDED)
    assert VibesListSubscription.objects.get().state == "unsubscribed"


def test_an_unknown_person_is_kept_and_matched_when_the_member_appears(client, vibes, client_a):
    deliver(client, vibes, ADDED)
    state = VibesListSubscription.objects.get()
    assert state.member is None
    member = MemberFactory(client=client_a, annex_cloud_id="ex1234")
    assert match_unmatched() == {"matched": 1}
    state.refresh_from_db()
    assert state.member == member


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (DOCUMENTED_INVALID, "application/json", "not valid JSON"),
        (json.dumps(ADDED), "text/plain", "Content-Type must be application/json"),
        (json.dumps({k: v for k, v in ADDED.items() if k != "event_id"}), "application/json", "event_id"),
        (json.dumps({**ADDED, "callback_type": "person_updated"}), "application/json", "Unknown callback_type"),
        (json.dumps({**ADDED, "event_date": "yesterday"}), "application/json", "not a date-time"),
        (json.dumps({**ADDED, "subscription": {"person": {}}}), "application/json", "subscription.person.id"),
        ("[1, 2]", "application/json", "JSON object"),
    ],
)
def test_bad_deliveries_get_a_clear_400_and_are_kept(client, vibes, member, body, content_type, reason):
    response = deliver(client, vibes, body, content_type=content_type)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and event.body == body and reason in event.error
    assert not VibesListSubscription.objects.exists()


def test_oversized_bodies_are_refused_and_kept_truncated(client, vibes, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 100
    response = deliver(client, vibes, {**ADDED, "padding": "x" * 500})
    assert response.status_code == 413 and "larger than 100 bytes" in response.json()["detail"]
    assert len(WebhookEvent.objects.get().body) == 100


def test_unknown_token_is_404(client, vibes):
    assert client.post("/api/webhooks/vibes/not-a-token/", "{}", content_type="application/json").status_code == 404


def test_optional_basic_auth_and_ip_allow_list(client, vibes, member):
    vibes.settings = {"company_key": "acme", "callback_username": "vibes"}
    vibes.secrets = {"callback_password": "cb-pass-123"}
    vibes.save()
    assert deliver(client, vibes, ADDED).status_code == 401
    wrong = base64.b64encode(b"vibes:nope").decode()
    assert deliver(client, vibes, ADDED, HTTP_AUTHORIZATION=f"Basic {wrong}").status_code == 401
    right = base64.b64encode(b"vibes:cb-pass-123").decode()
    assert deliver(client, vibes, ADDED, HTTP_AUTHORIZATION=f"Basic {right}").status_code == 200
    vibes.settings = {"company_key": "acme", "callback_ip_allowlist": "vibes-us"}
    vibes.save()
    assert deliver(client, vibes, REMOVED).status_code == 403
    vibes.settings = {"company_key": "acme", "callback_ip_allowlist": "vibes-us, 127.0.0.0/8"}
    vibes.save()
    assert deliver(client, vibes, REMOVED).status_code == 200
    assert WebhookEvent.objects.filter(event_id=REMOVED["event_id"]).count() == 1


def test_a_processing_failure_is_stored_and_can_be_reprocessed(client, vibes, member, monkeypatch):
    original = flows.find_member

    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(flows, "find_member", broken)
    assert deliver(client, vibes, ADDED).status_code == 200  # stored: Vibes must not retry
    event = WebhookEvent.objects.get()
    assert event.status == "failed" and "database hiccup" in event.error and "Traceback" in event.traceback
    assert not VibesListSubscription.objects.exists()
    monkeypatch.setattr(flows, "find_member", original)
    call_command("reprocess_webhook_events")
    event.refresh_from_db()
    assert event.status == "processed"
    assert VibesListSubscription.objects.get().member == member


def test_admin_shows_the_raw_body_pretty_and_reprocesses(admin_http, client, vibes, member):
    deliver(client, vibes, DOCUMENTED_INVALID)
    rejected = WebhookEvent.objects.get()
    page = admin_http.get(reverse("admin:integrations_webhookevent_change", args=[rejected.pk])).content.decode()
    assert "&quot;callback:id&quot;,&quot;DEF123&quot;" in page  # not JSON: shown exactly as received
    listing = admin_http.get(reverse("admin:integrations_webhookevent_changelist"), {"status": "rejected"})
    assert list(listing.context["cl"].result_list) == [rejected]

    failed = WebhookEventFactory(
        connection=vibes,
        event_id=ADDED["event_id"],
        body=json.dumps(ADDED),
        status=WebhookEvent.Status.FAILED,
        error="OperationalError: database is locked",
        traceback="Traceback (most recent call last): ...",
    )
    page = admin_http.get(reverse("admin:integrations_webhookevent_change", args=[failed.pk])).content.decode()
    assert "{\n  &quot;event_id&quot;: &quot;AB234SDFD234&quot;,\n  &quot;callback_type&quot;" in page  # pretty
    assert not VibesListSubscription.objects.exists()

    response = admin_http.post(
        reverse("admin:integrations_webhookevent_changelist"),
        {"action": "reprocess", "_selected_action": [failed.pk, rejected.pk]},
        follow=True,
    )

    assert [str(m) for m in response.context["messages"]] == ["Reprocessed: 1 applied, 0 failed again."]
    failed.refresh_from_db()
    assert failed.status == "processed" and failed.processed_at is not None and failed.traceback == ""
    state = VibesListSubscription.objects.get()
    assert (state.member, state.state, state.last_event_id) == (member, "subscribed", ADDED["event_id"])
    member.refresh_from_db()
    assert person_id_of(member) == "ABC123"
    rejected.refresh_from_db()
    assert rejected.status == "rejected"  # a bad delivery can never be applied


def test_a_callback_to_another_clients_url_stores_nothing_for_this_client(client, vibes, member, client_b):
    """Client A's member is ex1234; a callback about person ex1234 arrives at client B's URL. Nothing of it is A's."""
    vibes_b = ConnectionFactory(client=client_b, vendor="vibes", secrets={}, settings={"company_key": "beta"})
    assert deliver(client, vibes_b, ADDED).status_code == 200
    assert not WebhookEvent.objects.filter(connection=vibes).exists()
    assert WebhookEvent.objects.get().connection == vibes_b
    assert not VibesListSubscription.objects.filter(client=member.client).exists()
    state = VibesListSubscription.objects.get()
    assert (state.client, state.member) == (client_b, None)
    member.refresh_from_db()
    assert person_id_of(member) == ""


@pytest.mark.skipif("db.vendor != 'postgresql'", reason="true concurrency needs PostgreSQL")
def test_two_copies_at_the_same_instant_are_applied_once(vibes, member):
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send() -> None:
        barrier.wait()
        statuses.append(deliver(HttpClient(), vibes, ADDED).status_code)
        db.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    assert sorted(WebhookEvent.objects.values_list("status", flat=True)) == ["duplicate", "processed"]
    assert VibesListSubscription.objects.count() == 1


# --- Every JSON type in every field, every string: a 4xx with a reason, stored, never a 500 (issue 21, finding 11) --


def with_subscription(**changes) -> dict:
    payload = copy.deepcopy(ADDED)
    payload["subscription"].update(changes)
    return payload


def with_person(**changes) -> dict:
    payload = copy.deepcopy(ADDED)
    payload["subscription"]["person"].update(changes)
    return payload


WRONG_TYPES = {
    "callback_type as a list": ({**ADDED, "callback_type": ["subscription_added"]}, "callback_type"),
    "callback_type as an object": ({**ADDED, "callback_type": {"a": 1}}, "callback_type"),
    "callback_type as a number": ({**ADDED, "callback_type": 7}, "callback_type"),
    "event_id as a list": ({**ADDED, "event_id": ["AB"]}, "event_id"),
    "event_id as a float": ({**ADDED, "event_id": 1.5}, "event_id"),
    "event_date as a number": ({**ADDED, "event_date": 1487173343}, "event_date"),
    "callback_id as an object": ({**ADDED, "callback_id": {"id": 1}}, "callback_id"),
    "person id as a list": (with_person(id=["ABC123"]), "subscription.person.id"),
    "external_id as an object": (with_person(external_id={"x": 1}), "subscription.person.external_id"),
    "external_id over 100 characters": (with_person(external_id="x" * 101), "subscription.person.external_id"),
    "mobile_phone as a list": (with_person(mobile_phone=["+12995551234"]), "subscription.person.mobile_phone"),
    "mdn as an object": (with_person(mdn={"n": 1}), "subscription.person.mdn"),
    "list id as an object": (
        with_subscription(subscription_list={"id": {"a": 1}}),
        "subscription.subscription_list.id",
    ),
    "acquisition_campaign as a list": (with_subscription(acquisition_campaign=[1]), "acquisition_campaign"),
    "opt_out_reason as a list": (with_subscription(opt_out_reason=["user_opt_out"]), "opt_out_reason"),
    "opt_out_reason over 50 characters": (with_subscription(opt_out_reason="r" * 51), "opt_out_reason"),
    "opt_in_date as a number": (with_subscription(opt_in_date=20170115), "subscription.opt_in_date"),
    "an impossible opt_in_date": (with_subscription(opt_in_date="2017-02-30T15:34:52Z"), "subscription.opt_in_date"),
    "an impossible opt_out_date": (with_subscription(opt_out_date="2017-13-01T00:00:00+0000"), "opt_out_date"),
    "opt_in_date in year 1 with an offset": (
        with_subscription(opt_in_date="0001-01-01T00:00:00+01:00"),
        "subscription.opt_in_date",
    ),
    "an impossible event_date": ({**ADDED, "event_date": "2017-02-29T15:42:23Z"}, "event_date"),
}


@pytest.mark.parametrize(("payload", "field"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_field_of_the_wrong_type_or_an_impossible_date_is_a_400_naming_it(client, vibes, member, payload, field):
    response = deliver(client, vibes, payload)
    assert response.status_code == 400 and field in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and field in event.error
    assert not VibesListSubscription.objects.exists()


LONE_SURROGATES = {
    "in event_id": json.dumps({**ADDED, "event_id": "AB\ud800"}),
    "in callback_type": json.dumps({**ADDED, "callback_type": "\ud800"}),
    "in callback_id": json.dumps({**ADDED, "callback_id": "\udfff"}),
    "in external_id": json.dumps(with_person(external_id="ex\ud800")),
    "in an unused field": json.dumps({**ADDED, "note": "\ud800"}),
    "in a key": json.dumps({**ADDED, "\ud800": 1}),
}


@pytest.mark.parametrize("body", LONE_SURROGATES.values(), ids=LONE_SURROGATES.keys())
def test_a_lone_surrogate_anywhere_is_a_400_and_the_delivery_is_stored(client, vibes, member, body):
    response = deliver(client, vibes, body)
    assert response.status_code == 400 and "surrogate" in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and "surrogate" in event.error
    event.body.encode("utf-8")  # storable and showable as it is stored


def test_a_lone_surrogate_sent_as_raw_bytes_is_stored_replaced(client, vibes, member):
    body = json.dumps({**ADDED, "event_id": "AB\ud800"}, ensure_ascii=False).encode("utf-8", "surrogatepass")
    response = deliver(client, vibes, body)
    assert response.status_code == 400 and "surrogate" in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == "rejected" and "\ufffd" in event.body


def test_a_nul_escape_in_any_string_is_a_400(client, vibes, member):
    response = deliver(client, vibes, with_subscription(opt_out_reason="user\u0000opt_out"))
    assert response.status_code == 400 and "subscription.opt_out_reason" in response.json()["detail"]
    assert WebhookEvent.objects.get().status == "rejected"


def test_every_field_vibes_documents_still_applies(client, vibes, member):
    payload = with_person(mobile_phone={"mdn": "+12995551234"}, external_id=1234)
    payload["subscription"].update(opt_out_date=None, acquisition_campaign=None)
    assert deliver(client, vibes, payload).status_code == 200
    assert WebhookEvent.objects.get().status == "processed"


def test_a_refused_callback_with_an_escaped_lone_surrogate_still_shows_in_the_admin(admin_http, client, vibes):
    response = deliver(client, vibes, '{"event_id": "\\ud800", "callback_type": "subscription_added"}')
    assert response.status_code == 400
    page = admin_http.get(reverse("admin:integrations_webhookevent_change", args=[WebhookEvent.objects.get().pk]))
    assert page.status_code == 200 and "received-body" in page.content.decode()
