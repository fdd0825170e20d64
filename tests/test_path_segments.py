"""Every value an api.py puts into a URL path is one segment: escaped, and `.`, `..` or "" refused before anything
is sent (urllib3 removes a literal dot segment, so `/users/..` would leave as `/`). The Vibes company key picks the
path of every person call: validated as a key, and set by site admins only (issue 21, findings 9 and 10)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from pytest_httpserver import HTTPServer

from integrations.annexcloud.flows import annex_cloud_api
from integrations.attentive.flows import attentive_api
from integrations.connections import verify
from integrations.http import UnsafePathSegment, path_segment
from integrations.models import Connection, VendorCall
from integrations.sessionm.api import SessionMAPI
from integrations.vendors import VENDORS
from integrations.vibes.api import BadCompanyKey, VibesAPI
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

ANY_PATH = re.compile(".*")


def raw_paths(server: HTTPServer) -> list[str]:
    """The request targets as they arrived, before the server decoded them (%2F stays %2F)."""
    return [request.environ.get("RAW_URI") or request.environ["REQUEST_URI"] for request, _ in server.log]


@pytest.fixture
def answers_404_everywhere(httpserver: HTTPServer) -> HTTPServer:
    """A vendor host that answers 404 to every path it has no route for: a call sent to a wrong path gets a 404 too,
    which a check must not read as "no such person"."""
    httpserver.expect_request(ANY_PATH).respond_with_data("", status=404)
    return httpserver


# --- The helper ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_dot_segments_and_empty_ones_are_refused_in_words(value):
    with pytest.raises(UnsafePathSegment) as raised:
        path_segment(value, vendor="Annex Cloud")
    assert raised.value.vendor == "Annex Cloud" and "URL path" in raised.value.message
    assert raised.value.counts_against_connection is False  # the data's fault, not the connection's


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("../../x?y=", "..%2F..%2Fx%3Fy%3D"),
        ("..%2F", "..%252F"),
        ("%2e%2e", "%252e%252e"),
        ("...", "..."),
        ("a/../b", "a%2F..%2Fb"),
        ("x#y", "x%23y"),
    ],
)
def test_anything_else_stays_one_segment(value, segment):
    assert path_segment(value) == segment


# --- Annex Cloud -------------------------------------------------------------------------------------------------


@pytest.fixture
def annex_on(httpserver: HTTPServer, client_a):
    client_a.site_id = "100001"
    client_a.save()
    secrets = {"api_secret": "annex-secret-0123456789"}
    ConnectionFactory(client=client_a, vendor="annex_cloud", base_url=httpserver.url_for("/"), secrets=secrets)
    return annex_cloud_api(client_a)


def test_a_member_id_of_dot_dot_sends_no_signed_request(annex_on, answers_404_everywhere):
    with pytest.raises(UnsafePathSegment):
        annex_on.get_member("..")
    assert answers_404_everywhere.log == []


def test_a_segment_id_stays_one_segment(annex_on, httpserver: HTTPServer):
    httpserver.expect_request(ANY_PATH).respond_with_json({"id": "x"})
    annex_on.get_segment("../points")
    assert raw_paths(httpserver) == ["/segment/..%2Fpoints"]
    with pytest.raises(UnsafePathSegment):
        annex_on.update_segment("..", {"name": "x"})
    assert len(httpserver.log) == 1


# --- SessionM ------------------------------------------------------------------------------------------------------


def test_sessionm_ids_are_segments(httpserver: HTTPServer):
    httpserver.expect_request(ANY_PATH).respond_with_json({"status": "ok", "user": {"id": "u"}})
    api = SessionMAPI(httpserver.url_for("/"), api_key="key+with/slash", api_secret="secret-0123456789")
    with pytest.raises(UnsafePathSegment):
        api.forget_user("..")
    with pytest.raises(UnsafePathSegment):
        api.user_by_external_id(".")
    api.user_by_external_id("a/b")
    assert raw_paths(httpserver) == ["/priv/v1/apps/key%2Bwith%2Fslash/external/users/a%2Fb"]


# --- Vibes ---------------------------------------------------------------------------------------------------------


def test_a_person_id_of_dot_dot_is_refused(answers_404_everywhere):
    vibes = VibesAPI(answers_404_everywhere.url_for("/"), company_key="acme", username="u", password="p")
    with pytest.raises(UnsafePathSegment):
        vibes.update_by_person_id("..", {})
    with pytest.raises(UnsafePathSegment):
        vibes.unsubscribe_person("p1", "..")
    assert answers_404_everywhere.log == []


def test_a_stored_hostile_company_key_fails_verify_and_sends_nothing(answers_404_everywhere, client_a):
    """A key stored before the rule (the form refuses it now): before, `../../x?y=` sent the Basic credentials to
    `/x` and that path's 404 passed Verify, making the connection active."""
    connection = ConnectionFactory(
        client=client_a,
        vendor="vibes",
        base_url=answers_404_everywhere.url_for("/"),
        secrets={"api_username": "vibes-user", "api_password": "vibes-password-123"},
        settings={"company_key": "../../x?y="},
    )
    outcome = verify(connection)
    connection.refresh_from_db()
    assert not outcome.ok and "company key" in outcome.message
    assert connection.status != Connection.Status.ACTIVE
    assert answers_404_everywhere.log == [] and not VendorCall.objects.exists()


def test_the_company_key_is_checked_by_the_api_too(answers_404_everywhere):
    vibes = VibesAPI(answers_404_everywhere.url_for("/"), company_key="acme/../x", username="u", password="p")
    with pytest.raises(BadCompanyKey):
        vibes.add_person({})
    assert answers_404_everywhere.log == []


@pytest.mark.parametrize("key", ["../../x?y=", "acme/x", "acme key", "acme.", "%61cme", "ácme"])
def test_the_settings_form_refuses_what_is_not_a_company_key(key):
    form = VENDORS["vibes"].settings_form_class()(data={"company_key": key})
    assert not form.is_valid()
    assert "letters, digits" in " ".join(form.errors["company_key"])


def test_the_settings_form_takes_a_company_key():
    form = VENDORS["vibes"].settings_form_class()(data={"company_key": "Acme_Co-2"})
    assert form.is_valid(), form.errors


@pytest.fixture
def vibes_connection_a(client_a):
    return ConnectionFactory(
        client=client_a,
        vendor="vibes",
        secrets={"api_username": "vibes-user", "api_password": "vibes-password-123"},
        settings={"company_key": "acme"},
    )


def test_only_a_site_admin_changes_the_company_key(alice_http, admin_http, vibes_connection_a):
    url = reverse("admin:integrations_connection_change", args=[vibes_connection_a.pk])
    page = alice_http.get(url).content.decode()
    # Shown to the client user, not editable.
    assert re.search(r'<input[^>]*name="setting__company_key"[^>]*disabled', page)
    data = {"environment": "production", "base_url": "", "setting__company_key": "other-company"}
    alice_http.post(url, data)
    vibes_connection_a.refresh_from_db()
    assert vibes_connection_a.settings["company_key"] == "acme"
    assert admin_http.post(url, data).status_code == 302
    vibes_connection_a.refresh_from_db()
    assert vibes_connection_a.settings["company_key"] == "other-company"


def test_a_site_admin_cannot_store_a_hostile_company_key(admin_http, vibes_connection_a):
    url = reverse("admin:integrations_connection_change", args=[vibes_connection_a.pk])
    data = {"environment": "production", "base_url": "", "setting__company_key": "../../x?y="}
    response = admin_http.post(url, data)
    assert response.status_code == 200 and "letters, digits" in response.content.decode()
    vibes_connection_a.refresh_from_db()
    assert vibes_connection_a.settings["company_key"] == "acme"


# --- Attentive -----------------------------------------------------------------------------------------------------


def test_only_a_site_admin_picks_the_attentive_messages_endpoint(alice_http, admin_http, client_a):
    connection = ConnectionFactory(client=client_a, settings={"messages_path": "/v1/subscriptions/messages"})
    url = reverse("admin:integrations_connection_change", args=[connection.pk])
    page = alice_http.get(url).content.decode()
    # Shown to the client user, not editable: the path is where the legacy token goes.
    assert re.search(r'<select[^>]*name="setting__messages_path"[^>]*disabled', page)
    data = {"environment": "production", "base_url": "", "setting__messages_path": "/1/messages"}
    alice_http.post(url, data)
    connection.refresh_from_db()
    assert connection.settings["messages_path"] == "/v1/subscriptions/messages"
    assert admin_http.post(url, data).status_code == 302
    connection.refresh_from_db()
    assert connection.settings["messages_path"] == "/1/messages"


@pytest.mark.parametrize("stored", ["/v1/../../admin", "/v1/%2e%2e/admin", "/v1//x", "/v1/text/send?to=x"])
def test_a_stored_messages_path_never_climbs_out_with_the_legacy_token(answers_404_everywhere, client_a, stored):
    """The form offers documented paths only; a value stored before that rule is refused before anything is sent."""
    connection = ConnectionFactory(
        client=client_a, base_url=answers_404_everywhere.url_for("/"), settings={"messages_path": stored}
    )
    with pytest.raises(UnsafePathSegment):
        attentive_api(connection).send_message("+14155550100", "hi")
    assert answers_404_everywhere.log == []


def test_a_documented_messages_path_is_sent_as_chosen(httpserver: HTTPServer, client_a):
    httpserver.expect_request("/v1/text/send", method="POST").respond_with_json({})
    connection = ConnectionFactory(
        client=client_a, base_url=httpserver.url_for("/"), settings={"messages_path": "/v1/text/send"}
    )
    attentive_api(connection).send_message("+14155550100", "hi")
    assert raw_paths(httpserver) == ["/v1/text/send"]
