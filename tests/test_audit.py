"""The audit trail: people's changes to clients and connections (admin saves, the Attentive activation page, the
Annex Cloud credentials page, verify / disable / reset) record who, when and which fields; a secret is recorded as
changed, never by value; site admins see the trail, client users don't; the portal's own state changes are not
recorded as edits."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations import connections
from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
from integrations.models import AuditEntry, Connection
from tests.factories import ClientUserFactory, ConnectionFactory
from tests.list_pages import column

NEW_KEY = "attentive-key-NEW-5555666677"


def everything_recorded() -> str:
    return str(list(AuditEntry.objects.values()))


def change_connection(http, connection: Connection, **fields):
    url = reverse("admin:integrations_connection_change", args=[connection.pk])
    form = {"environment": connection.environment, "base_url": connection.base_url, "secret__api_key": ""}
    response = http.post(url, {**form, "secret__legacy_token": "", **fields})
    assert response.status_code == 302, response.context["adminform"].form.errors
    return response


@pytest.mark.django_db
def test_a_connection_edit_records_who_which_fields_and_only_that_the_key_changed(admin_http, site_admin, client_a):
    connection = ConnectionFactory(client=client_a)
    change_connection(admin_http, connection, base_url="https://api.attentivemobile.com", secret__api_key=NEW_KEY)
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.actor_name, entry.action) == (site_admin, "site-admin", "changed")
    assert (entry.client, entry.subject_type, entry.subject_id) == (client_a, "connection", connection.pk)
    assert entry.fields == ["base_url", "api_key"]
    assert entry.changes == ["base_url: '' → 'https://api.attentivemobile.com'", "api_key changed"]
    for secret in (NEW_KEY, "attentive-key-0123456789", "legacy-tok-98765"):
        assert secret not in everything_recorded()


@pytest.mark.django_db
def test_a_save_that_changes_nothing_records_nothing(admin_http, client_a):
    connection = ConnectionFactory(client=client_a)
    change_connection(admin_http, connection, secret__api_key="attentive-key-0123456789")  # the same key again
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_adding_a_connection_records_the_secrets_as_set(admin_http, client_a):
    url = reverse("admin:integrations_connection_add") + "?vendor=vibes"
    data = {"client": client_a.pk, "vendor": "vibes", "environment": "production", "base_url": ""}
    secrets = {"secret__api_username": "vibes-user", "secret__api_password": "vibes-password-XYZ"}
    admin_http.post(url, {**data, **secrets, "setting__company_key": "acme"})
    entry = AuditEntry.objects.get()
    assert entry.action == "created"
    assert {"api_username set", "api_password set", "settings.company_key: '' → 'acme'"} <= set(entry.changes)
    assert "vibes-password-XYZ" not in everything_recorded()


@pytest.mark.django_db
def test_a_client_edit_records_fields_and_users(admin_http, client_a):
    ClientUserFactory(username="bob")
    url = reverse("admin:integrations_client_change", args=[client_a.pk])
    form = admin_http.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "users"}
    data.update(
        {
            "name": "Alpha Apparel EU",
            "default_region": "GB",
            "active": "on",
            "users": [form.fields["users"].queryset.get(username="bob").pk],
        }
    )
    for prefix in ("connections", "sign_up_sources"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    response = admin_http.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(subject_type="client")
    assert entry.action == "changed" and entry.client == client_a
    assert "name: 'Alpha Apparel' → 'Alpha Apparel EU'" in entry.changes
    assert "users: '' → 'bob'" in entry.changes
    assert "default_region: 'US' → 'GB'" in entry.changes


@pytest.mark.django_db
def test_deleting_a_client_keeps_its_entries(admin_http, client_a):
    url = reverse("admin:integrations_client_delete", args=[client_a.pk])
    assert admin_http.post(url, {"post": "yes"}).status_code == 302
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.subject, entry.client) == ("deleted", "Alpha Apparel", None)


@pytest.mark.django_db
def test_disable_and_reset_actions_record_the_status_change(admin_http, client_a):
    connection = ConnectionFactory(client=client_a)
    changelist = reverse("admin:integrations_connection_changelist")
    for action in ("disable_connections", "reset_to_draft"):
        admin_http.post(changelist, {"action": action, "_selected_action": [connection.pk]})
    disabled, reset = AuditEntry.objects.order_by("pk")
    assert (disabled.action, disabled.changes) == ("disabled", ["status: 'active' → 'disabled'"])
    assert (reset.action, reset.changes) == ("reset to draft", ["status: 'disabled' → 'draft'"])


@pytest.mark.django_db
def test_the_portals_own_state_changes_are_not_edits(client_a):
    connection = ConnectionFactory(client=client_a)
    connections.mark_failing(connection, "401 from the vendor")
    connections.recover(connection)
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_verify_records_the_outcome_and_the_status(admin_http, sandbox_attentive_connection):
    Connection.objects.filter(pk=sandbox_attentive_connection.pk).update(status=Connection.Status.DRAFT)
    changelist = reverse("admin:integrations_connection_changelist")
    admin_http.post(changelist, {"action": "verify_connections", "_selected_action": [sandbox_attentive_connection.pk]})
    entry = AuditEntry.objects.get()
    assert entry.action == "verified" and entry.changes == ["status: 'draft' → 'active'"]
    assert entry.note.startswith("Verified:")


@pytest.mark.django_db(transaction=True)
def test_the_attentive_activation_page_is_recorded_without_its_secrets(admin_http, client_a, attentive_sandbox):
    url = reverse("admin:integrations_client_attentive", args=[client_a.pk])
    data = {
        "environment": "sandbox",
        "api_key": API_KEY,
        "legacy_token": LEGACY_TOKEN,
        "sign_up_sources": "132109, Loyalty",
    }
    admin_http.post(url, data)
    entry = AuditEntry.objects.get()
    assert entry.action == "activation page" and entry.subject_type == "connection"
    assert {"api_key set", "legacy_token set", "status: '' → 'active'"} <= set(entry.changes)
    assert "sign_up_sources: '' → '132109 Loyalty (default)'" in entry.changes
    assert API_KEY not in everything_recorded() and LEGACY_TOKEN not in everything_recorded()


@pytest.mark.django_db
def test_the_annex_cloud_credentials_page_is_recorded_without_its_secrets(admin_http, client_a):
    url = reverse("admin:integrations_client_annex_cloud", args=[client_a.pk])
    admin_http.post(url, {"site_id": "424242", "loyalty_token": "loyal-tok-SECRET-1", "api_secret": ""})
    entry = AuditEntry.objects.get()
    assert entry.action == "credentials page"
    assert set(entry.changes) == {f"site_id: '{client_a.site_id}' → '424242'", "loyalty_token set"}
    assert "loyal-tok-SECRET-1" not in everything_recorded()


@pytest.mark.django_db
def test_site_admins_see_the_trail_client_users_do_not(admin_http, alice_http, client_a):
    connection = ConnectionFactory(client=client_a)
    change_connection(admin_http, connection, secret__api_key=NEW_KEY)
    entry = AuditEntry.objects.get()
    changelist = reverse("admin:integrations_auditentry_changelist")
    page = admin_http.get(changelist).content.decode()
    assert [cell["text"] for cell in column(page, "summary")] == ["api_key"] and NEW_KEY not in page
    detail = admin_http.get(reverse("admin:integrations_auditentry_change", args=[entry.pk]))
    assert detail.status_code == 200 and "api_key changed" in detail.content.decode()
    assert admin_http.post(reverse("admin:integrations_auditentry_delete", args=[entry.pk])).status_code == 403
    assert alice_http.get(changelist).status_code == 403
    assert "Audit entries" not in alice_http.get("/admin/").content.decode()


@pytest.mark.django_db
def test_a_client_users_connection_edit_is_recorded_as_theirs(alice_http, user_a, client_a):
    connection = ConnectionFactory(client=client_a)
    change_connection(alice_http, connection, secret__legacy_token="legacy-NEW-token-42")
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.changes) == (user_a, ["legacy_token changed"])
