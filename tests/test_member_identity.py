"""A member's Annex Cloud id is unique per client (when not blank) and e-mails are valid, at every way in: the API
(field errors), the CSV import (the line reported, the others kept), the admin form and the Annex Cloud refresh
(the stored value kept, the reason noted); existing duplicates are told apart by the migration, never a failed
upgrade (issue 20, findings 8 and 10)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from integrations.annexcloud.flows import adjust_points, refresh_member
from integrations.models import Connection
from integrations.sessionm import sandbox as sessionm_simulator
from integrations.sessionm.models import SessionMProfile
from integrations.vibes.flows import person_id_of
from members import imports, sync
from members.imports import import_members
from members.models import Member, MemberVendorState
from tests.factories import ConnectionFactory, MemberFactory

BAD_EMAILS = ["sp ace@x.com", "a@b@c.com"]


@pytest.fixture
def ann(client_a) -> Member:
    return MemberFactory(client=client_a, annex_cloud_id="ac-1", email="ann@x.com", first_name="Ann", last_name="")


def taken_by(holder: Member) -> str:
    return f"Another member of this client has this Annex Cloud id: {holder} (member {holder.pk})."


# --- The API -----------------------------------------------------------------------------------------------------


def test_the_api_refuses_an_annex_cloud_id_another_member_has(api_client_for, client_a, client_b, ann):
    api = api_client_for(client_a)
    created = api.post("/api/members/", {"annex_cloud_id": "ac-1", "email": "bo@x.com"}, format="json")
    assert created.status_code == 400
    assert created.json()["annex_cloud_id"] == [
        f"Another member of this client has this Annex Cloud id: Ann (member {ann.pk})."
    ]
    bo = MemberFactory(client=client_a, annex_cloud_id="ac-2")
    changed = api.patch(f"/api/members/{bo.pk}/", {"annex_cloud_id": "ac-1"}, format="json")
    assert changed.status_code == 400 and "annex_cloud_id" in changed.json()
    assert api.patch(f"/api/members/{ann.pk}/", {"annex_cloud_id": "ac-1"}, format="json").status_code == 200
    # Unique per client: another client's member may have the same id.
    other = api_client_for(client_b).post("/api/members/", {"annex_cloud_id": "ac-1"}, format="json")
    assert other.status_code == 201, other.json()
    assert Member.objects.filter(client=client_a, annex_cloud_id="ac-1").count() == 1


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_the_api_refuses_invalid_emails(api_client_for, client_a, ann, email):
    api = api_client_for(client_a)
    assert "email" in api.post("/api/members/", {"email": email}, format="json").json()
    assert api.patch(f"/api/members/{ann.pk}/", {"email": email}, format="json").status_code == 400
    ann.refresh_from_db()
    assert ann.email == "ann@x.com"


# --- The CSV import ----------------------------------------------------------------------------------------------


def test_the_import_reports_a_taken_annex_cloud_id_by_line_and_keeps_the_other_rows(client_a, ann, monkeypatch):
    # Another process gives member "Ann"'s id away between the import's look-up and its insert: the rows are matched
    # to no member, as a row read just before Ann's id was stored would be.
    monkeypatch.setattr(imports, "keys_in_use", lambda client, rows: set())
    monkeypatch.setattr(imports, "find_existing", lambda client, values: None)
    report = import_members(
        client_a,
        io.BytesIO(b"annex_cloud_id,email\nac-9,cy@x.com\nac-1,dee@x.com\n,sp ace@x.com\n,a@b@c.com\nac-8,eve@x.com\n"),
    )
    assert (report.created, report.failed) == (2, 3)
    reasons = dict(report.errors)
    assert reasons[3] == f"another member of this client already has this annex_cloud_id (Ann, member {ann.pk})"
    assert reasons[4] == reasons[5] == "Enter a valid email address."
    assert sorted(Member.objects.values_list("annex_cloud_id", "email")) == [
        ("ac-1", "ann@x.com"),
        ("ac-8", "eve@x.com"),
        ("ac-9", "cy@x.com"),
    ]


# --- The admin form ----------------------------------------------------------------------------------------------


def management_forms(page: Any) -> dict[str, Any]:
    """The management form of every inline the page shows (vendors add inlines)."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        form = inline.formset.management_form
        data |= {f"{form.prefix}-{name}": form[name].value() for name in form.fields}
    return data


def member_form(client, **values: str) -> dict[str, Any]:
    fields = {"client": client.pk, "annex_cloud_id": "", "email": "", "phone": "", "first_name": "", "last_name": ""}
    return {**fields, "zip_code": "", "status": "active", "tier": "", "points": "0", **values}


def test_the_admin_form_refuses_an_annex_cloud_id_another_member_has(admin_http, client_a, ann):
    url = reverse("admin:members_member_add")
    page = admin_http.get(url)
    response = admin_http.post(url, {**member_form(client_a, annex_cloud_id="ac-1"), **management_forms(page)})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["annex_cloud_id"] == [taken_by(ann)]
    bad_email = admin_http.post(url, {**member_form(client_a, email="sp ace@x.com"), **management_forms(page)})
    assert "email" in bad_email.context["adminform"].form.errors
    assert list(Member.objects.all()) == [ann]


# --- The Annex Cloud refresh -------------------------------------------------------------------------------------


def test_a_refresh_never_gives_a_member_an_annex_cloud_id_another_has(annex_cloud_sandbox, client_a, ann):
    simulator, _ = annex_cloud_sandbox
    bo = MemberFactory(client=client_a, email="bo@x.com", annex_cloud_id="", first_name="Bo", last_name="")
    simulator.members["bo@x.com"] = {"id": "ac-1", "email": "bo@x.com", "availablePoints": 10}
    simulator.members["ac-1"] = {"id": "ac-1", "email": "ann@x.com", "availablePoints": 0}
    outcome = refresh_member(bo)
    bo.refresh_from_db()
    assert (bo.annex_cloud_id, bo.points) == ("", 10)  # the rest of the profile is taken
    # Bo's points go to Bo's own record at Annex Cloud, never to the member whose id another member here has.
    assert adjust_points(bo, activity="credit", points=5, key="k-bo").transaction.status == "applied"
    assert simulator.points["k-bo"]["id"] == "bo@x.com" and simulator.members["ac-1"]["availablePoints"] == 0
    assert outcome.ok and "Annex Cloud's id 'ac-1'" in outcome.message and f"member {ann.pk}" in bo.annex_cloud_note


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("email", BAD_EMAILS)
def test_a_bad_email_from_a_refresh_is_kept_out_and_never_sent_on(
    annex_cloud_sandbox, vibes_sandbox, sessionm_sandbox, client_a, email
):
    annex, _ = annex_cloud_sandbox
    vibes, _ = vibes_sandbox
    ConnectionFactory(
        client=client_a,
        vendor="sessionm",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(sessionm_simulator.DEMO_SECRETS),
        settings=dict(sessionm_simulator.DEMO_SETTINGS),
    )
    member = MemberFactory(client=client_a, annex_cloud_id="ac-7", email="jo@x.com", first_name="Jo")
    annex.members["ac-7"] = {"id": "ac-7", "email": email, "firstName": "Joanna"}
    outcome = refresh_member(member)
    for vendor in ("vibes", "sessionm"):
        assert sync.reconcile(member.pk, vendor).status == MemberVendorState.Status.IN_SYNC
    member.refresh_from_db()
    # What the vendors hold: the name Annex Cloud changed, the address it could not.
    person = vibes.persons[person_id_of(member)]
    assert (person["custom_fields"]["first_name"], person["custom_fields"]["email"]) == ("Joanna", "jo@x.com")
    user = sessionm_sandbox.users[SessionMProfile.objects.get(member=member).user_id]
    assert (user["first_name"], user["email"]) == ("Joanna", "jo@x.com")
    assert outcome.ok and "is not a valid e-mail address" in outcome.message
    assert member.email == "jo@x.com" and email in member.annex_cloud_note


# --- Existing duplicates: the migration ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_reports_existing_duplicates_and_keeps_the_first_members_id(client_a, client_b, capsys):
    before, after = [("members", "0009_dashboard_windows")], [("members", "0011_unique_annex_cloud_id_per_client")]
    executor = MigrationExecutor(db_connection)
    executor.migrate(before)
    OldMember = executor.loader.project_state(before).apps.get_model("members", "Member")
    first, second, third = (OldMember.objects.create(client_id=client_a.pk, annex_cloud_id="ac-1") for _ in range(3))
    elsewhere = OldMember.objects.create(client_id=client_b.pk, annex_cloud_id="ac-1")
    blank = [OldMember.objects.create(client_id=client_a.pk, annex_cloud_id="") for _ in range(2)]
    executor = MigrationExecutor(db_connection)
    executor.loader.build_graph()
    executor.migrate(after)
    try:
        printed = capsys.readouterr().out
        # The member as migration 0011 leaves it (later migrations may add columns the current model reads).
        UpgradedMember = executor.loader.project_state(after).apps.get_model("members", "Member")
        ids = dict(UpgradedMember.objects.values_list("pk", "annex_cloud_id"))
        assert ids == {
            first.pk: "ac-1", second.pk: "", third.pk: "", elsewhere.pk: "ac-1", **{m.pk: "" for m in blank}
        }  # fmt: skip
        for cleared in (second, third):
            note = UpgradedMember.objects.get(pk=cleared.pk).annex_cloud_note
            assert "'ac-1' cleared on upgrade" in note and f"member {first.pk}" in note
            assert f"member {cleared.pk}: Annex Cloud id 'ac-1'" in printed
    finally:
        # Back to the latest schema whatever happened: the tests after this one need it.
        executor = MigrationExecutor(db_connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
