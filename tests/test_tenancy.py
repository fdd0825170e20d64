"""A client user of A gets nothing of B: not in lists, change pages, deletes, actions, autocomplete, filters or
the API, and not by guessing ids in URLs. Site admins see everything."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import ApiToken, Connection, JobRun, VendorCall


def rows_of(client, connection, name: str) -> dict:
    """One row of each admin-listed model for the client, named after it."""
    call = VendorCall.objects.create(connection=connection, method="GET", url=f"https://{name}.example/secret-url")
    run = JobRun.objects.create(job=f"{name}-job", client=client)
    token, _ = ApiToken.issue(client, f"{name} token")
    return {"connection": connection, "vendorcall": call, "jobrun": run, "apitoken": token, "client": client}


@pytest.fixture
def a_rows(connection_a, client_a):
    return rows_of(client_a, connection_a, "alpha")


@pytest.fixture
def b_rows(connection_b, client_b):
    return rows_of(client_b, connection_b, "beta")


ADMIN_MODELS = ["client", "connection", "vendorcall", "jobrun", "apitoken"]


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_client_user_lists_show_only_their_client(alice_http, a_rows, b_rows, model):
    response = alice_http.get(reverse(f"admin:integrations_{model}_changelist"))
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [a_rows[model].pk]
    assert "Beta Boutique" not in response.content.decode()


@pytest.mark.parametrize("model", ADMIN_MODELS)
def test_client_user_cannot_open_or_delete_b_rows_by_id(alice_http, b_rows, model):
    pk = b_rows[model].pk
    for view in ("change", "delete", "history"):
        response = alice_http.get(reverse(f"admin:integrations_{model}_{view}", args=[pk]), follow=True)
        assert "Beta Boutique" not in response.content.decode()
        assert response.status_code in (200, 403, 404)
    post = alice_http.post(reverse(f"admin:integrations_{model}_delete", args=[pk]), {"post": "yes"})
    assert post.status_code in (302, 403, 404)
    assert type(b_rows[model]).objects.filter(pk=pk).exists()


def test_client_user_actions_cannot_reach_b_rows(alice_http, connection_a, b_rows):
    url = reverse("admin:integrations_connection_changelist")
    alice_http.post(
        url, {"action": "disable_connections", "_selected_action": [connection_a.pk, b_rows["connection"].pk]}
    )
    assert Connection.objects.get(pk=connection_a.pk).status == Connection.Status.DISABLED
    assert Connection.objects.get(pk=b_rows["connection"].pk).status == Connection.Status.ACTIVE


def test_client_filter_offers_only_their_clients(alice_http, connection_a, b_rows):
    response = alice_http.get(reverse("admin:integrations_connection_changelist"))
    html = response.content.decode()
    assert "Alpha Apparel" in html and "Beta Boutique" not in html
    filtered = alice_http.get(reverse("admin:integrations_connection_changelist"), {"client": b_rows["client"].pk})
    assert list(filtered.context["cl"].result_list) == []


def test_autocomplete_returns_only_their_clients(alice_http, client_a, b_rows):
    response = alice_http.get(
        reverse("admin:autocomplete"),
        {"app_label": "integrations", "model_name": "connection", "field_name": "client", "term": ""},
    )
    assert response.status_code == 200
    names = {r["text"] for r in response.json()["results"]}
    assert names == {"Alpha Apparel"}


def test_client_user_cannot_create_rows_for_another_client(alice_http, client_a, b_rows):
    response = alice_http.post(reverse("admin:integrations_apitoken_add"), {"client": b_rows["client"].pk, "name": "x"})
    assert response.status_code == 200
    assert "client" in response.context["adminform"].form.errors
    assert not ApiToken.objects.filter(client=b_rows["client"], name="x").exists()
    # Connections are created by site admins only.
    add_connection = alice_http.post(
        reverse("admin:integrations_connection_add"), {"client": client_a.pk, "vendor": "vibes"}
    )
    assert add_connection.status_code == 403


def test_site_admin_sees_every_client(admin_http, connection_a, b_rows):
    html = admin_http.get(reverse("admin:integrations_connection_changelist")).content.decode()
    assert "Alpha Apparel" in html and "Beta Boutique" in html


def test_api_token_sees_only_its_client(api_client_for, connection_a, b_rows, client_a):
    api = api_client_for(client_a)
    clients = api.get("/api/clients/").json()["results"]
    assert [c["slug"] for c in clients] == ["alpha"]
    connections = api.get("/api/connections/").json()["results"]
    assert [c["client"] for c in connections] == ["alpha"]
    assert api.get(f"/api/connections/{b_rows['connection'].pk}/").status_code == 404
    assert api.get(f"/api/clients/{b_rows['client'].pk}/").status_code == 404


def test_session_api_is_scoped_for_client_users(alice_http, connection_a, b_rows):
    slugs = [c["client"] for c in alice_http.get("/api/connections/").json()["results"]]
    assert slugs == ["alpha"]
    assert alice_http.get(f"/api/connections/{b_rows['connection'].pk}/").status_code == 404
