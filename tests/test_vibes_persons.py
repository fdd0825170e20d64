"""Vibes person sync: Vibes' person API v2 example, every status code, and coalesced updates after edits."""

from __future__ import annotations

import base64

import pytest
from django.core.management import call_command
from pytest_httpserver import HTTPServer

from integrations.connections import verify as verify_connection
from integrations.http import AuthError, NotFound
from integrations.models import Connection, WebhookEvent
from integrations.vibes.api import MdnConflict, Unprocessable, VibesAPI, person_payload
from integrations.vibes.flows import person_id_of, sync_person
from integrations.vibes.models import VibesListSubscription
from members import sync
from portal.celery import app as celery_app
from tests.factories import MemberFactory

V2_EXAMPLE = {
    "external_person_id": "EXT542342",
    "mobile_phone": {"mdn": "+12995551234"},
    "custom_fields": {"first_name": "John", "last_name": "Doe"},
}


@pytest.fixture
def api(httpserver: HTTPServer) -> VibesAPI:
    return VibesAPI(httpserver.url_for(""), company_key="acme", username="user", password="pass")


def test_update_by_external_id_sends_the_documented_v2_request(api, httpserver):
    auth = "Basic " + base64.b64encode(b"user:pass").decode()
    httpserver.expect_oneshot_request(
        "/companies/acme/mobiledb/persons/external/EXT542342",
        method="PUT",
        headers={"Authorization": auth, "X-API-Version": "2", "Content-Type": "application/json"},
        json=V2_EXAMPLE,
    ).respond_with_json(V2_EXAMPLE, status=200)
    payload = person_payload("EXT542342", "+12995551234", {"first_name": "John", "last_name": "Doe"})
    assert api.update_by_external_id("EXT542342", payload).created is False
    httpserver.check_assertions()


def test_add_person_201_created_and_200_merged(api, httpserver):
    httpserver.expect_ordered_request("/companies/acme/mobiledb/persons/", method="POST").respond_with_json(
        {"person_id": "P1"}, status=201
    )
    httpserver.expect_ordered_request("/companies/acme/mobiledb/persons/", method="POST").respond_with_json(
        {"person_id": "P1"}, status=200
    )
    assert api.add_person(V2_EXAMPLE).created is True
    merged = api.add_person(V2_EXAMPLE)
    assert merged.created is False and merged.person_id == "P1"


@pytest.mark.parametrize(
    ("status", "error"), [(404, NotFound), (409, MdnConflict), (422, Unprocessable), (401, AuthError)]
)
def test_status_codes(api, httpserver, status, error):
    httpserver.expect_request("/companies/acme/mobiledb/persons/P1", method="PUT").respond_with_data("", status=status)
    with pytest.raises(error):
        api.update_by_person_id("P1", V2_EXAMPLE)


@pytest.mark.django_db(transaction=True)
def test_sync_adds_an_unknown_person_then_updates_it(vibes_sandbox, client_a):
    state, _ = vibes_sandbox
    member = MemberFactory(client=client_a, annex_cloud_id="EXT1", phone="+14045551234", first_name="Jo")
    first = sync_person(member)
    assert first.ok and "created" in first.message  # 404 on update, then added
    member.refresh_from_db()
    person = state.persons[person_id_of(member)]
    assert person["mobile_phone"] == {"mdn": "+14045551234"} and person["custom_fields"]["first_name"] == "Jo"
    member.first_name = "Joanna"
    member.save()
    assert sync_person(member).ok
    assert state.persons[person_id_of(member)]["custom_fields"]["first_name"] == "Joanna"


@pytest.mark.django_db(transaction=True)
def test_changing_a_persons_number_is_explained_as_vibes_means_it_and_changes_nothing(vibes_sandbox, client_a):
    state, _ = vibes_sandbox
    state.persons["OTHER"] = {"person_id": "OTHER", "mobile_phone": {"mdn": "+14045550000"}}
    VibesListSubscription.objects.create(
        client=client_a, person_id="OTHER", mdn="+14045550000", list_id="1", state="subscribed",
        last_event_date="2017-01-01T00:00:00Z",
    )  # fmt: skip
    member = MemberFactory(client=client_a, phone="+14045551234")
    assert sync_person(member).ok
    member.refresh_from_db()
    member.phone = "+14045550000"  # the number another person holds
    member.save()
    outcome = sync_person(member)
    # Vibes documents a 409 on update as "MDN cannot be changed" (not "someone else holds it").
    assert not outcome.ok and "MDN cannot be changed" in outcome.message and "never changes" in outcome.message
    assert state.persons["OTHER"]["mobile_phone"]["mdn"] == "+14045550000"


@pytest.mark.django_db(transaction=True)
def queued_task_names() -> list[str]:
    """Take every message off the default queue and return their task names."""
    with celery_app.connection_for_read() as conn:
        queue = conn.SimpleQueue("sync")
        names = []
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                return names
            names.append(message.headers["task"])
            message.ack()


def test_ten_edits_make_one_queued_update(vibes_sandbox, client_a, api_client_for):
    member = MemberFactory(client=client_a, phone="+14045551234")
    api = api_client_for(client_a)
    queued_task_names()  # what earlier tests left on the in-memory broker
    for n in range(10):
        assert api.patch(f"/api/members/{member.pk}/", {"first_name": f"Name {n}"}, format="json").status_code == 200
    messages = queued_task_names()
    assert messages.count("members.reconcile_member") == 1
    sync.reconcile(member.pk, "vibes")
    member.refresh_from_db()
    state, _ = vibes_sandbox
    assert state.persons[person_id_of(member)]["custom_fields"]["first_name"] == "Name 9"
    assert member.vendor_states.get(vendor="vibes").in_step


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_fires_callbacks_at_the_portal(vibes_sandbox, client_a, live_server, eager_celery):
    _, connection = vibes_sandbox
    member = MemberFactory(client=client_a, annex_cloud_id="EXT9", phone="+14045551234")
    call_command("vibes_send_callback", client=client_a.slug, member=member.pk, url=live_server.url)
    event = WebhookEvent.objects.get(connection=connection)
    assert event.status == "processed"
    assert VibesListSubscription.objects.get().member == member


@pytest.mark.django_db(transaction=True)
def test_verify_activates_with_working_credentials_and_explains_bad_ones(vibes_sandbox):
    _, connection = vibes_sandbox
    connection.status = Connection.Status.DRAFT
    connection.save()
    assert verify_connection(connection).ok
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE
    connection.secrets = {"api_username": "sandbox", "api_password": "wrong"}
    connection.save()
    outcome = verify_connection(connection)
    assert not outcome.ok and "rejected the API credentials" in outcome.message
