"""Hostile input and secrets: a secret never goes anywhere but the connection's base URL, ids are escaped in paths,
and vendor text is redacted before it is stored or shown."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from integrations.annexcloud.flows import annex_cloud_api
from integrations.attentive.flows import attentive_api
from integrations.connections import api_for, verify
from integrations.http import ForbiddenDestination, VendorAPI
from integrations.inbound import BadDelivery
from integrations.models import Connection, VendorCall, WebhookEvent
from integrations.vibes.api import VibesAPI
from integrations.vibes.webhooks import parse_callback
from tests.factories import ConnectionFactory, MemberFactory

pytestmark = pytest.mark.django_db


def test_a_full_url_to_another_host_is_refused_and_nothing_is_sent(httpserver: HTTPServer):
    connection = ConnectionFactory(base_url="https://api.attentivemobile.com")
    api = api_for(connection, VendorAPI)
    with pytest.raises(ForbiddenDestination):
        api.request("POST", httpserver.url_for("/steal"), json_body={"x": 1})
    assert httpserver.log == [] and not VendorCall.objects.exists()


def test_the_messages_path_is_a_documented_choice_not_a_url(client_a):
    spec_form = ConnectionFactory(client=client_a).spec.settings_form_class()
    form = spec_form(data={"messages_path": "http://127.0.0.1:9/x"})
    assert not form.is_valid() and "messages_path" in form.errors
    connection = ConnectionFactory(settings={"messages_path": "http://127.0.0.1:9/x"})
    with pytest.raises(ForbiddenDestination):
        attentive_api(connection).send_message("+14155550100", "hi")


def test_member_ids_are_escaped_in_paths(httpserver: HTTPServer, client_a):
    client_a.site_id = "100001"
    client_a.save()
    secrets = {"api_secret": "annex-secret-0123456789"}
    ConnectionFactory(client=client_a, vendor="annex_cloud", base_url=httpserver.url_for("/"), secrets=secrets)
    # The server sees one path segment holding the whole e-mail, "#" included (not a fragment cut off).
    httpserver.expect_request("/users/c#d@example.com").respond_with_json({"id": "c#d@example.com"})
    assert annex_cloud_api(client_a).get_member("c#d@example.com") == {"id": "c#d@example.com"}
    vibes = VibesAPI(httpserver.url_for("/"), company_key="acme", username="u", password="p")
    httpserver.expect_request("/companies/acme/mobiledb/persons/external/c#d", method="PUT").respond_with_json({})
    vibes.update_by_external_id("c#d", {})


def test_a_vendor_echoing_the_key_never_stores_or_shows_it(httpserver: HTTPServer, client_a, admin_http):
    key = "attentive-key-ECHOED-0123456789"
    connection = ConnectionFactory(client=client_a, base_url=httpserver.url_for("/"), secrets={"api_key": key})
    httpserver.expect_request("/v1/me").respond_with_json({"message": f"bad key {key}"}, status=401)
    outcome = verify(connection)
    connection.refresh_from_db()
    assert not outcome.ok and key not in outcome.message
    assert key not in connection.last_check_result
    assert key not in admin_http.get("/admin/").content.decode()
    assert key not in str(list(VendorCall.objects.values()))


def test_an_echo_of_the_base64_credentials_is_redacted(httpserver: HTTPServer):
    import base64

    encoded = base64.b64encode(b"vibes-user:vibes-password-123").decode()
    httpserver.expect_request("/companies/acme/mobiledb/persons/", method="POST").respond_with_json(
        {"message": f"bad auth {encoded}"}, status=422
    )
    vibes = VibesAPI(httpserver.url_for("/"), company_key="acme", username="vibes-user", password="vibes-password-123")
    with pytest.raises(Exception) as raised:
        vibes.add_person({})
    assert encoded not in str(raised.value)


# --- Vibes callbacks: every delivery that reaches the view is stored and answered 2xx or 4xx, never 5xx ----------


def callback(**changes) -> dict:
    body = {
        "event_id": "E1",
        "callback_type": "subscription_added",
        "event_date": "2026-01-01T00:00:00Z",
        "subscription": {"person": {"id": "P1"}, "subscription_list": {"id": "L1"}},
    }
    body.update(changes)
    return body


def nested(depth: int) -> str:
    return '{"event_id": "E1", "x": ' + "[" * depth + "]" * depth + "}"


HOSTILE = {
    "NUL bytes": json.dumps(callback()).replace('"E1"', '"E\\u0000"').encode().replace(b"\\u0000", b"\x00"),
    "event_id over 100 chars": json.dumps(callback(event_id="x" * 101)).encode(),
    "a 400-digit event_id": ('{"event_id": ' + "9" * 400 + "}").encode(),
    "an impossible date": json.dumps(callback(event_date="2026-13-45T25:61:00Z")).encode(),
    "a date in year 9999": json.dumps(callback(event_date="9999-01-01T00:00:00Z")).encode(),
    "person not an object": json.dumps(
        callback(subscription={"person": "P1", "subscription_list": {"id": "1"}})
    ).encode(),
    "list not an object": json.dumps(
        callback(subscription={"person": {"id": "P1"}, "subscription_list": [1]})
    ).encode(),
    "JSON nested 2,000 deep": nested(2000).encode(),
}


@pytest.fixture
def vibes_connection(client_a):
    return ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_callbacks_are_stored_and_refused_with_a_reason(client, vibes_connection, body):
    url = reverse("vibes-callback", args=[vibes_connection.inbound_token])
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.REJECTED and "\x00" not in event.body


def test_a_huge_callback_is_kept_truncated_and_refused(client, vibes_connection, settings):
    url = reverse("vibes-callback", args=[vibes_connection.inbound_token])
    response = client.post(url, b"{" + b" " * 3_000_000 + b"}", content_type="application/json")
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    assert len(WebhookEvent.objects.get().body) == settings.WEBHOOK_MAX_BODY_BYTES


def test_an_allow_list_entry_is_validated_when_saved_and_a_broken_one_refuses(client, vibes_connection):
    form = vibes_connection.spec.settings_form_class()(
        data={"company_key": "a", "callback_ip_allowlist": "10.0.0.0/33"}
    )
    assert not form.is_valid() and "callback_ip_allowlist" in form.errors
    vibes_connection.settings = {**vibes_connection.settings, "callback_ip_allowlist": "not-an-address"}
    vibes_connection.save()
    url = reverse("vibes-callback", args=[vibes_connection.inbound_token])
    assert client.post(url, json.dumps(callback()), content_type="application/json").status_code == 403


def test_behind_a_trusted_proxy_the_allow_list_reads_the_forwarded_address(client, vibes_connection, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    vibes_connection.settings = {**vibes_connection.settings, "callback_ip_allowlist": "vibes-us"}
    vibes_connection.save()
    url = reverse("vibes-callback", args=[vibes_connection.inbound_token])
    body = json.dumps(callback())
    from_vibes = client.post(url, body, content_type="application/json", HTTP_X_FORWARDED_FOR="35.155.139.143")
    from_elsewhere = client.post(url, body, content_type="application/json", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert (from_vibes.status_code, from_elsewhere.status_code) == (200, 403)
    settings.TRUSTED_PROXIES = []  # not behind a proxy: the header is anyone's to write
    forged = client.post(url, body, content_type="application/json", HTTP_X_FORWARDED_FOR="35.155.139.143")
    assert forged.status_code == 403


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_the_callback_parser_refuses_in_words_or_accepts_never_crashes(body):
    try:
        payload = parse_callback("application/json", body)
    except BadDelivery as exc:
        assert str(exc)
    else:
        assert isinstance(payload, dict) and payload["event_id"]


# --- The API and admin answer 4xx to bad input, never 5xx -----------------------------------------------------


@pytest.mark.parametrize(
    "query", ["limit=99999999999999999999", "offset=99999999999999999999", "limit=1000000000&offset=5"]
)
def test_absurd_paging_numbers_are_bounded(api_client_for, client_a, query):
    response = api_client_for(client_a).get(f"/api/members/?{query}")
    assert response.status_code == 200


def test_nul_characters_are_refused_with_a_400(api_client_for, client_a, admin_http):
    api = api_client_for(client_a)
    assert api.get("/api/members/?client=al\x00pha").status_code == 400
    response = api.post("/api/loyalty-events/", '{"event_id": "e\\u0000", "event_type": "points_earned"}',
                        content_type="application/json")  # fmt: skip
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    assert admin_http.get("/admin/members/member/?tier=Gold\x00").status_code == 400
    # A multipart form (what the schema allows for member creation) with a NUL in a field: 400, nothing stored.
    form = api.post("/api/members/", {"client": "al\x00pha", "first_name": "Eve"}, format="multipart")
    assert form.status_code == 400 and "NUL" in form.json()["detail"]
    assert not client_a.members.exists()


@pytest.mark.parametrize("page", ["add", "change"])
def test_a_secret_with_a_line_break_is_refused_when_entered(
    admin_http, client_a, client_b, httpserver: HTTPServer, page
):
    """Refused with a word on the field, whether typed into a new connection or an existing one, and with "Save and
    verify": nothing is stored (the old secret stays) and nothing reaches the vendor."""
    owner = client_a if page == "change" else client_b  # client A may add its one Attentive connection
    stored = ConnectionFactory(client=owner, vendor="attentive", base_url=httpserver.url_for("/"))
    before = list(Connection.objects.order_by("pk").values())
    form = {"environment": "production", "base_url": stored.base_url, "secret__api_key": "abc\ndef"}
    form |= {"_verify": "Save and verify"}
    if page == "add":
        url = reverse("admin:integrations_connection_add") + "?vendor=attentive"
        form |= {"client": client_a.pk, "vendor": "attentive"}
    else:
        url = reverse("admin:integrations_connection_change", args=[stored.pk])
    response = admin_http.post(url, form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["secret__api_key"] and "line breaks" in errors["secret__api_key"][0]
    assert list(Connection.objects.order_by("pk").values()) == before
    assert httpserver.log == []


def test_verifying_a_disabled_connection_says_what_to_do(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, status="disabled")
    response = admin_http.post(
        "/admin/integrations/connection/",
        {"action": "verify_connections", "_selected_action": [connection.pk]},
        follow=True,
    )
    assert response.status_code == 200 and "is disabled: return it to draft first" in response.content.decode()


def test_adding_members_to_a_segment_named_by_garbage_is_refused_in_words(admin_http, client_a):
    member = MemberFactory(client=client_a)
    response = admin_http.post(
        "/admin/members/member/",
        {"action": "add_to_segment", "_selected_action": [member.pk], "segment": "abc"},
        follow=True,
    )
    assert response.status_code == 200 and "Choose a segment of the members" in response.content.decode()
