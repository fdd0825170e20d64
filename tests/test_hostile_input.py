"""Hostile input and secrets: a secret never goes anywhere but the connection's base URL, ids are escaped in paths,
and vendor text is redacted before it is stored or shown."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from integrations.annexcloud.flows import annex_cloud_api
from integrations.attentive.flows import attentive_api
from integrations.connections import api_for, verify
from integrations.http import ForbiddenDestination, VendorAPI
from integrations.models import VendorCall
from integrations.vibes.api import VibesAPI
from tests.factories import ConnectionFactory

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
