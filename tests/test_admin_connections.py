"""Connections in the admin: secrets are write-only and masked, no page ever shows one, blank keeps the stored
value, vendor settings are validated, and the partner access token is revealed only to site admins."""

from __future__ import annotations

import base64
import json

import pytest
from django.urls import reverse

from integrations.models import ApiToken, Connection, VendorCall
from tests.factories import ConnectionFactory

SECRETS = {"api_secret": "annex-shared-secret-AAAA1111", "loyalty_token": "loyalty-token-BBBB2222"}


@pytest.fixture
def annex(client_a):
    client_a.site_id = "123456"
    client_a.save()
    return ConnectionFactory(client=client_a, vendor="annex_cloud", secrets=SECRETS)


def partner_token() -> str:
    return base64.b64encode(json.dumps([SECRETS["loyalty_token"], "123456"], separators=(",", ":")).encode()).decode()


def admin_pages_of(connection: Connection) -> list[str]:
    return [
        reverse("admin:integrations_connection_changelist"),
        reverse("admin:integrations_connection_change", args=[connection.pk]),
        reverse("admin:integrations_connection_history", args=[connection.pk]),
        reverse("admin:integrations_connection_delete", args=[connection.pk]),
        reverse("admin:integrations_vendorcall_changelist"),
        reverse("admin:index"),
    ]


@pytest.mark.parametrize("user_fixture", ["admin_http", "alice_http"])
def test_no_admin_page_of_a_connection_shows_a_secret(request, annex, user_fixture):
    VendorCall.objects.create(connection=annex, method="GET", url="https://x.example/users")
    http = request.getfixturevalue(user_fixture)
    for url in admin_pages_of(annex):
        response = http.get(url)
        assert response.status_code == 200 or (url.endswith("/delete/") and response.status_code == 403), url
        html = response.content.decode()
        for secret in [*SECRETS.values(), partner_token()]:
            assert secret not in html, f"{url} shows a secret"
    change = http.get(reverse("admin:integrations_connection_change", args=[annex.pk])).content.decode()
    assert "••••1111" in change  # masked: last four only


def test_posting_secrets_stores_them_and_blank_keeps_them(admin_http, annex):
    url = reverse("admin:integrations_connection_change", args=[annex.pk])
    form = {"environment": "staging", "base_url": "", "secret__api_secret": "", "secret__loyalty_token": "new-loyal-9"}
    response = admin_http.post(url, {**form, "setting__jwt_subject": "ops@example.com"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    annex.refresh_from_db()
    assert annex.secrets == {"api_secret": SECRETS["api_secret"], "loyalty_token": "new-loyal-9"}
    assert annex.settings == {"jwt_subject": "ops@example.com"}
    assert annex.environment == "staging"


def test_invalid_vendor_settings_are_refused_with_field_messages(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, vendor="first_orion", secrets={}, settings={"client_id": "abc"})
    url = reverse("admin:integrations_connection_change", args=[connection.pk])
    response = admin_http.post(
        url,
        {"environment": "production", "setting__client_id": "", "setting__rate_limit_per_second": "-1"},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "setting__client_id" in errors and "setting__rate_limit_per_second" in errors
    connection.refresh_from_db()
    assert connection.settings == {"client_id": "abc"}


def test_add_a_connection_then_enter_secrets(admin_http, client_a):
    response = admin_http.get(reverse("admin:integrations_connection_add") + "?vendor=attentive")
    assert "secret__api_key" in response.content.decode()
    response = admin_http.post(
        reverse("admin:integrations_connection_add") + "?vendor=attentive",
        {"client": client_a.pk, "vendor": "attentive", "environment": "sandbox", "secret__api_key": "k-123456789"},
    )
    connection = Connection.objects.get(client=client_a, vendor="attentive")
    assert response.status_code == 302
    assert connection.status == Connection.Status.DRAFT
    assert connection.secrets == {"api_key": "k-123456789"}
    assert connection.effective_base_url == "http://127.0.0.1:8000/sandbox/attentive"


def test_add_without_secrets_sends_the_admin_to_enter_them(admin_http, client_a):
    response = admin_http.post(
        reverse("admin:integrations_connection_add") + "?vendor=bazaarvoice",
        {"client": client_a.pk, "vendor": "bazaarvoice", "environment": "staging"},
    )
    connection = Connection.objects.get(client=client_a, vendor="bazaarvoice")
    assert response["Location"] == reverse("admin:integrations_connection_change", args=[connection.pk])
    assert connection.effective_base_url == "https://stg.api.bazaarvoice.com"


def test_partner_token_is_revealed_to_site_admins_only(admin_http, alice_http, annex):
    url = reverse("admin:integrations_connection_partner_token", args=[annex.pk])
    response = admin_http.get(url)
    assert response.json() == {"token": partner_token()}
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    assert alice_http.get(url).status_code == 403
    change = admin_http.get(reverse("admin:integrations_connection_change", args=[annex.pk])).content.decode()
    assert "data-reveal-url" in change


def test_error_reports_never_see_posted_secrets(admin_http, annex):
    """The change view is wrapped in sensitive_post_parameters, so Django's error reporter masks every field."""
    url = reverse("admin:integrations_connection_change", args=[annex.pk])
    response = admin_http.post(url, {"environment": "production", "secret__api_secret": "posted-secret-XYZ"})
    assert response.wsgi_request.sensitive_post_parameters == "__ALL__"


def test_api_token_key_is_shown_once_and_stored_hashed(admin_http, client_a):
    response = admin_http.post(reverse("admin:integrations_apitoken_add"), {"client": client_a.pk, "name": "csv"})
    key = response.context["key"]
    token = ApiToken.objects.get(name="csv")
    assert key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert token.key_hash != key and key not in token.key_hash
    listing = admin_http.get(reverse("admin:integrations_apitoken_changelist")).content.decode()
    assert key not in listing


def test_a_client_needs_a_real_phone_region(admin_http):
    response = admin_http.post(
        reverse("admin:integrations_client_add"),
        {"name": "Delta", "slug": "delta", "site_id": "1", "default_region": "XX", "active": "on"},
    )
    assert "is not a phone region" in response.content.decode()


def test_client_users_cannot_redirect_a_connection_elsewhere(alice_http, connection_a):
    url = reverse("admin:integrations_connection_change", args=[connection_a.pk])
    response = alice_http.post(
        url,
        {
            "environment": "sandbox",
            "base_url": "https://attacker.example",
            "secret__api_key": "",
            "secret__legacy_token": "",
        },
    )
    assert response.status_code == 302
    connection_a.refresh_from_db()
    assert (connection_a.environment, connection_a.base_url) == ("production", "")
