"""The activation and connection forms a newcomer meets first: every field explained, "Save and verify" never keeps a
secret the vendor just refused (for every vendor, through connections.save_and_verify), and on sandbox set-ups the
sandbox's credentials with a one-click fill. Verification goes to the simulators over real HTTP."""

from __future__ import annotations

import html as html_lib
import json
import re

import pytest
from django.core import mail
from django.urls import reverse

from integrations.annexcloud import sandbox as annex_simulator
from integrations.attentive import sandbox as attentive_simulator
from integrations.models import Connection
from integrations.vibes import sandbox as vibes_simulator
from tests.factories import ConnectionFactory
from tests.test_content_security_policy import INLINE

pytestmark = pytest.mark.django_db(transaction=True)

SOURCES = "132109, Loyalty"


def activate(http, client, **fields):
    url = reverse("admin:integrations_client_attentive", args=[client.pk])
    data = {"environment": "sandbox", "api_key": "", "legacy_token": "", "sign_up_sources": SOURCES}
    return http.post(url, {**data, **fields}, follow=True)


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def fill_values(html: str) -> dict[str, str]:
    found = re.search(r'data-sandbox-fill="([^"]*)"', html)
    return json.loads(html_lib.unescape(found.group(1))) if found else {}


# --- Attentive's activation page ------------------------------------------------------------------------------


def test_a_refused_key_for_a_new_connection_is_not_stored(admin_http, client_a, attentive_sandbox):
    response = activate(admin_http, client_a, api_key="sandbox-attentive-wrong-key")
    assert "rejected the API key" in messages_of(response) and "was not kept" in messages_of(response)
    connection = Connection.objects.get(client=client_a, vendor="attentive")
    assert connection.secrets == {} and connection.status == Connection.Status.DRAFT
    # Following the old README advice (leave the secrets blank and "Save and verify") now asks for the key.
    again = activate(admin_http, client_a)
    assert "This field is required" in again.content.decode()


def test_a_refused_key_leaves_an_active_connection_on_its_working_key(
    admin_http, client_a, sandbox_attentive_connection, settings
):
    sandbox_attentive_connection.status = Connection.Status.ACTIVE
    sandbox_attentive_connection.save()
    settings.ADMINS = [("Ops", "ops@example.com")]
    response = activate(admin_http, client_a, api_key="sandbox-attentive-typo-key")
    assert "the previous value is still stored" in messages_of(response)
    sandbox_attentive_connection.refresh_from_db()
    assert sandbox_attentive_connection.secret("api_key") == attentive_simulator.API_KEY
    assert sandbox_attentive_connection.status == Connection.Status.ACTIVE
    assert sandbox_attentive_connection.consecutive_failures == 0
    assert not [m for m in mail.outbox if "failing" in m.subject]
    # Blank keeps the stored key, which still works.
    assert "Attentive is active" in messages_of(activate(admin_http, client_a))


def test_a_key_that_could_not_be_judged_is_kept_to_verify_later(admin_http, client_a, attentive_sandbox, settings):
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9/sandbox"
    response = activate(admin_http, client_a, api_key=attentive_simulator.API_KEY)
    assert "try again" in messages_of(response).lower()
    assert Connection.objects.get(client=client_a, vendor="attentive").secret("api_key") == attentive_simulator.API_KEY


def test_the_activation_page_explains_every_field_and_offers_the_sandbox_credentials(admin_http, client_a):
    response = admin_http.get(reverse("admin:integrations_client_attentive", args=[client_a.pk]))
    page = response.content.decode()
    form = response.context["form"]
    assert all(field.help_text for field in form.fields.values())
    assert fill_values(page) == attentive_simulator.DEMO_SECRETS
    assert "Fill with the sandbox's credentials" in page and "sandbox_fill.js" in page
    assert not INLINE.search(page)


def test_no_sandbox_credentials_for_a_production_connection_or_without_the_simulators(admin_http, client_a, settings):
    url = reverse("admin:integrations_client_attentive", args=[client_a.pk])
    connection = ConnectionFactory(client=client_a, vendor="attentive", environment="production")
    assert fill_values(admin_http.get(url).content.decode()) == {}
    connection.environment = "sandbox"
    connection.save()
    settings.SANDBOX_ENABLED, settings.DEBUG = False, False
    page = admin_http.get(url).content.decode()
    assert "data-sandbox-fill" not in page and attentive_simulator.API_KEY not in page


# --- The generic connection form (every vendor) ---------------------------------------------------------------


def change_form(http, connection, **secrets):
    url = reverse("admin:integrations_connection_change", args=[connection.pk])
    data = {
        "environment": "sandbox",
        "base_url": "",
        "secret__api_username": "",
        "secret__api_password": "",
        "secret__callback_password": "",
        "setting__company_key": "acme",
        "_verify": "Save and verify",
        **secrets,
    }
    return http.post(url, data, follow=True)


def test_save_and_verify_keeps_the_previous_secret_when_the_new_one_is_refused(admin_http, vibes_sandbox):
    _, connection = vibes_sandbox
    response = change_form(admin_http, connection, secret__api_password="sandbox-vibes-mistyped")
    assert "Vibes rejected the API credentials" in messages_of(response) and "was not kept" in messages_of(response)
    connection.refresh_from_db()
    assert connection.secret("api_password") == vibes_simulator.PASSWORD
    # Not marked failing for a password it never used.
    assert connection.status == Connection.Status.ACTIVE and connection.last_check_ok is False
    verified = change_form(admin_http, connection)
    assert "Verified" in messages_of(verified)
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE and connection.last_check_ok


def test_save_and_verify_on_a_new_connection_stores_nothing_refused(admin_http, client_a, vibes_sandbox):
    _, existing = vibes_sandbox
    existing.delete()
    url = reverse("admin:integrations_connection_add") + "?vendor=vibes"
    data = {
        "client": client_a.pk,
        "vendor": "vibes",
        "environment": "sandbox",
        "base_url": "",
        "secret__api_username": vibes_simulator.USERNAME,
        "secret__api_password": "sandbox-vibes-mistyped",
        "setting__company_key": "acme",
        "_verify": "Save and verify",
    }
    response = admin_http.post(url, data, follow=True)
    assert "nothing is stored" in messages_of(response)
    assert Connection.objects.get(client=client_a, vendor="vibes").secrets == {}
    data["secret__api_password"] = vibes_simulator.PASSWORD
    connection = Connection.objects.get(client=client_a, vendor="vibes")
    response = change_form(
        admin_http,
        connection,
        secret__api_username=vibes_simulator.USERNAME,
        secret__api_password=vibes_simulator.PASSWORD,
    )
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE
    assert connection.secrets["api_password"] == vibes_simulator.PASSWORD


def test_the_connection_form_explains_every_field_and_fills_the_sandbox_credentials(admin_http, client_a):
    response = admin_http.get(reverse("admin:integrations_connection_add") + "?vendor=vibes")
    page = response.content.decode()
    form = response.context["adminform"].form
    unexplained = [name for name, field in form.fields.items() if not field.help_text]
    assert unexplained == []
    assert fill_values(page) == {
        "secret__api_username": vibes_simulator.USERNAME,
        "secret__api_password": vibes_simulator.PASSWORD,
        "setting__company_key": "demo-company",
    }
    assert 'name="_verify"' in page and not INLINE.search(page)
    production = ConnectionFactory(client=client_a, vendor="vibes", environment="production")
    change = admin_http.get(reverse("admin:integrations_connection_change", args=[production.pk])).content.decode()
    assert "data-sandbox-fill" not in change


# --- Annex Cloud's site credentials page ----------------------------------------------------------------------


def test_annex_cloud_site_credentials_are_verified_and_refused_ones_not_kept(admin_http, client_a, annex_cloud_sandbox):
    _, connection = annex_cloud_sandbox
    url = reverse("admin:integrations_client_annex_cloud", args=[client_a.pk])
    page = admin_http.get(url)
    assert all(field.help_text for field in page.context["form"].fields.values())
    assert fill_values(page.content.decode()) == annex_simulator.DEMO_SECRETS
    wrong = {"site_id": "100001", "loyalty_token": "", "api_secret": "sandbox-annex-mistyped-shared-secret-0000"}
    refused = admin_http.post(url, wrong, follow=True)
    assert "Check the site id and the API shared secret" in messages_of(refused) and "not kept" in messages_of(refused)
    connection.refresh_from_db()
    assert connection.secret("api_secret") == annex_simulator.SECRET
    verified = admin_http.post(url, {**wrong, "api_secret": annex_simulator.SECRET}, follow=True)
    assert "Verified" in messages_of(verified)
