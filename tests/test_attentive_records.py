"""Attentive's sign-up sources belong to the attentive app: an upgrade keeps their table, rows and content type (so
permissions granted on them stay granted), the client's page still edits them (the vendor's inline, from the
registry), its audit trail records them, and client users may view them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from integrations.attentive.models import SignUpSource
from integrations.models import AuditEntry
from integrations.tenancy import CLIENT_USERS_GROUP, ensure_client_users_group
from tests.migrating import migrate, migrate_to_latest

BEFORE = [("integrations", "0017_webhookevent_connection_time"), ("attentive", None)]


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_keeps_the_sign_up_sources_and_their_permissions(client_a):
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state([BEFORE[0]]).apps  # the integrations app before the move
        old.get_model("integrations", "SignUpSource").objects.create(
            client_id=client_a.pk, source_id="132109", name="Loyalty", is_default=True
        )
        content_type = ContentType.objects.get(model="signupsource")
        assert content_type.app_label == "integrations"
        view = Permission.objects.get(content_type=content_type, codename="view_signupsource")

        migrate_to_latest()

        source = SignUpSource.objects.get()
        assert (source.client_id, source.source_id, source.name, source.is_default) == (
            client_a.pk,
            "132109",
            "Loyalty",
            True,
        )
        view.refresh_from_db()
        assert (view.content_type.pk, view.content_type.app_label) == (content_type.pk, "attentive")
    finally:
        # Back to the latest schema whatever happened: the tests after this one need it.
        migrate_to_latest()


@pytest.mark.django_db
def test_the_clients_page_edits_its_sign_up_sources_and_the_audit_trail_records_them(admin_http, client_a):
    url = reverse("admin:integrations_client_change", args=[client_a.pk])
    page = admin_http.get(url)
    assert "sign_up_sources-TOTAL_FORMS" in page.content.decode()  # Attentive's inline, from the registry
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "users"}
    data.update({"active": "on", "connections-TOTAL_FORMS": 0, "connections-INITIAL_FORMS": 0})
    data.update(
        {
            "sign_up_sources-TOTAL_FORMS": 1,
            "sign_up_sources-INITIAL_FORMS": 0,
            "sign_up_sources-0-source_id": "555",
            "sign_up_sources-0-name": "Store",
            "sign_up_sources-0-is_default": "on",
        }
    )
    response = admin_http.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    assert list(SignUpSource.objects.values_list("client_id", "source_id", "is_default")) == [
        (client_a.pk, "555", True)
    ]
    entry = AuditEntry.objects.get(subject_type="client")
    assert "sign_up_sources: '' → '555 Store (default)'" in entry.changes


@pytest.mark.django_db
def test_client_users_may_view_the_sign_up_sources():
    ensure_client_users_group()
    granted = Group.objects.get(name=CLIENT_USERS_GROUP).permissions
    assert granted.filter(content_type__app_label="attentive", codename="view_signupsource").exists()
