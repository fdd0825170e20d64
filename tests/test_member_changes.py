"""Who changed a member (members/changes.py): every way a member changes other than the member's admin page — the
API, an import (during the upload or in the background), a vendor's callback, an action on the members list, a
job — leaves a MemberChange naming it, shown on the member's timeline; the admin page's own log already says who,
so it records none. Changes come from the real entry points (HTTP to the API and the admin, a stored callback)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.api_shared import NamesItsChanges
from integrations.models import Connection, JobRun, WebhookEvent
from integrations.retention import prune_old_records
from integrations.task_base import run_as_job
from members import changes, sync, timeline
from members.imports import import_label, queue_import, run_import
from members.models import Member, MemberChange
from portal.urls import router
from tests.factories import ConnectionFactory, MemberFactory, SiteAdminFactory
from tests.test_admin_actions import run_action
from tests.test_member_identity import management_forms, member_form
from tests.test_vibes_callbacks import REMOVED, deliver


def changes_of(member: Member) -> list[tuple[str, str]]:
    return list(MemberChange.objects.filter(member=member).order_by("pk").values_list("by", "fields"))


def change_entries(member: Member) -> list[tuple[str, str]]:
    return [(entry.title, entry.detail) for entry in timeline.timeline(member) if entry.kind == "change"]


@pytest.mark.django_db
def test_a_change_through_the_api_names_the_token(client_a, api_client_for):
    api = api_client_for(client_a)  # its token is named "test token"
    created = api.post("/api/members/", {"email": "bo@example.com", "first_name": "Bo"}, format="json")
    assert created.status_code == 201, created.content
    member = Member.objects.get(pk=created.json()["id"])
    assert api.patch(f"/api/members/{member.pk}/", {"last_name": "Lee"}, format="json").status_code == 200
    assert changes_of(member) == [
        ("the API, token “test token”", "email, first_name"),
        ("the API, token “test token”", "last_name"),
    ]
    assert ("Changed by the API, token “test token”", "Changed last name.") in change_entries(member)


@pytest.mark.django_db
def test_an_edit_on_the_members_admin_page_is_in_the_admins_log_only(admin_http, client_a):
    member = MemberFactory(client=client_a, first_name="Pat", phone="", email="pat@example.com")
    url = reverse("admin:members_member_change", args=[member.pk])
    page = admin_http.get(url)
    fields = member_form(client_a, email="pat@example.com", first_name="Patricia", last_name=member.last_name)
    answer = admin_http.post(url, {**fields, **management_forms(page)})
    assert answer.status_code == 302
    assert Member.objects.get(pk=member.pk).first_name == "Patricia"
    assert changes_of(member) == []
    assert LogEntry.objects.filter(object_id=str(member.pk), action_flag=2).exists()
    assert [title for title, _ in change_entries(member)] == ["Changed by site-admin in the admin"]


@pytest.mark.django_db
def test_an_import_during_the_upload_names_who_uploaded_which_file_in_one_insert_per_batch(admin_http, client_a):
    file = io.BytesIO(b"email,first_name\nann@example.com,Ann\nben@example.com,Ben\n")
    file.name = "spring.csv"
    with CaptureQueriesContext(db_connection) as queries:
        answer = admin_http.post(reverse("admin:members_member_import"), {"client": client_a.pk, "file": file})
    assert answer.status_code == 200
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "members_memberchange"')]
    assert len(inserts) == 1
    for email in ("ann@example.com", "ben@example.com"):
        member = Member.objects.get(email=email)
        assert changes_of(member) == [("site-admin's import of spring.csv", "email, first_name")]


@pytest.mark.django_db
def test_a_background_import_names_who_uploaded_which_file(client_a):
    uploader = SiteAdminFactory(username="maria")
    data = b"email,last_name\ncy@example.com,Cole\n"
    member_import = queue_import(client_a, SimpleUploadedFile("autumn.csv", data), rows=1, user=uploader)
    run_import(member_import.pk)
    member = Member.objects.get(email="cy@example.com")
    assert changes_of(member) == [("maria's import of autumn.csv", "email, last_name")]
    assert import_label(None, "x.csv") == "someone's import of x.csv"
    [entry] = [entry for entry in timeline.timeline(member) if entry.kind == "change"]
    assert entry.url == reverse("admin:members_member_import")  # where the import is listed with its report


@pytest.mark.django_db(transaction=True)
def test_a_callback_names_its_vendor_and_event(client, client_a, eager_celery):
    vibes = ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})
    member = MemberFactory(client=client_a, annex_cloud_id="ex1234", phone="+12995551234", opted_in=True)
    assert deliver(client, vibes, REMOVED).status_code == 200
    assert not Member.objects.get(pk=member.pk).opted_in
    assert changes_of(member) == [(f"a Vibes callback (event {REMOVED['event_id']})", "opted_in")]
    assert (f"Changed by a Vibes callback (event {REMOVED['event_id']})", "Changed SMS opt-in.") in change_entries(
        member
    )
    # Linked to the stored delivery it came from.
    event = WebhookEvent.objects.get(event_id=REMOVED["event_id"])
    [entry] = [entry for entry in timeline.timeline(member) if entry.kind == "change"]
    assert entry.url == reverse("admin:integrations_webhookevent_change", args=[event.pk])


@pytest.mark.django_db(transaction=True)
def test_an_action_on_the_members_list_names_the_person_and_the_action(admin_http, client_a, annex_cloud_sandbox):
    state, _ = annex_cloud_sandbox
    state.members["AC-9"] = {"id": "AC-9", "email": "dee@example.com", "firstName": "Deirdre", "status": "ACTIVE"}
    member = MemberFactory(client=client_a, annex_cloud_id="AC-9", email="dee@example.com", first_name="Dee")
    run_action(admin_http, "members.member", "refresh_from_annex_cloud", [member])
    [(by, fields)] = changes_of(member)
    assert by == "site-admin with “Refresh from Annex Cloud” on the members list"
    assert "first_name" in fields.split(", ")


class JobTask:
    """What run_as_job reads of a Celery task: its name and its request."""

    name = "annex_cloud.refresh_members"

    class request:
        id = "job-task-1"
        hostname = "worker@test"


@pytest.mark.django_db
def test_a_change_names_the_record_it_came_from_and_the_timeline_links_its_page_where_there_is_one(client_a):
    member = MemberFactory(client=client_a)
    with changes.changed_by("the job “Refresh”"):
        sync.record_change(member, {"first_name"})
    with changes.changed_by("a test", source=Connection(pk=5)):
        sync.record_change(member, {"last_name"})

    assert list(MemberChange.objects.order_by("pk").values_list("source", flat=True)) == [
        "",
        "integrations.connection:5",
    ]
    assert timeline.source_url("") == "" and timeline.source_url("nowhere.nothing:1") == ""
    assert timeline.source_url("integrations.connection:5") == reverse("admin:integrations_connection_change", args=[5])


def test_a_job_names_itself_and_a_change_with_no_name_is_the_portals(client_a):
    member = MemberFactory(client=client_a, first_name="Al")
    run_as_job(JobTask(), lambda: {"changed": len(sync.change_member(member, first_name="Alan"))})
    sync.change_member(member, last_name="Smith")
    by_job, by_nobody = changes_of(member)
    assert by_job[0].startswith("the job “") and by_job[1] == "first_name"
    assert by_nobody == (changes.THE_PORTAL, "last_name")
    # The job's change links its run; the other links nothing.
    run = JobRun.objects.get()
    entries = {entry.title: entry.url for entry in timeline.timeline(member) if entry.kind == "change"}
    assert entries == {
        f"Changed by {by_job[0]}": reverse("admin:integrations_jobrun_change", args=[run.pk]),
        f"Changed by {changes.THE_PORTAL}": "",
    }


@pytest.mark.django_db
def test_changes_collected_for_one_insert_are_not_stored_when_the_work_fails(client_a):
    member = MemberFactory(client=client_a)
    with pytest.raises(RuntimeError), changes.collected():
        changes.record(member, {"email"})
        raise RuntimeError("the batch failed")
    assert changes_of(member) == []


@pytest.mark.django_db
def test_member_changes_are_pruned_after_their_period(client_a, settings):
    settings.MEMBER_CHANGE_RETENTION_DAYS = 90
    member = MemberFactory(client=client_a)
    old = MemberChange.objects.create(member=member, by="x", fields="email")
    MemberChange.objects.filter(pk=old.pk).update(changed_at=timezone.now() - timedelta(days=91))
    recent = MemberChange.objects.create(member=member, by="x", fields="email")
    MemberChange.objects.filter(pk=recent.pk).update(changed_at=timezone.now() - timedelta(days=89))
    assert prune_old_records()["member_changes"] == 1
    assert list(MemberChange.objects.values_list("pk", flat=True)) == [recent.pk]


def writes(viewset) -> bool:
    own = any(hasattr(viewset, name) for name in ("create", "update", "destroy"))
    return own or any({"post", "put", "patch", "delete"} & set(extra.mapping) for extra in viewset.get_extra_actions())


def test_every_client_api_view_that_writes_names_its_changes():
    """A view added without NamesItsChanges would record its changes as the portal's own: caught here."""
    writers = [viewset for _, viewset, _ in router.registry if writes(viewset)]
    assert {"MemberViewSet", "AttentiveMemberViewSet", "AnnexCloudMemberViewSet"} <= {v.__name__ for v in writers}
    assert [viewset.__name__ for viewset in writers if not issubclass(viewset, NamesItsChanges)] == []


@pytest.mark.django_db
def test_bookkeeping_alone_is_no_change_and_is_left_out_of_a_real_one(client_a):
    member = MemberFactory(client=client_a, first_name="Al")
    sync.change_member(member, annex_cloud_read_at=timezone.now(), known_to_annex_cloud=True)
    assert changes_of(member) == []
    sync.change_member(member, first_name="Alan", annex_cloud_read_at=timezone.now())
    assert changes_of(member) == [(changes.THE_PORTAL, "first_name")]


@pytest.mark.django_db
def test_a_row_an_import_rolls_back_leaves_no_change_behind(client_a):
    """A savepoint that rolls back inside an import's batch takes its recorded changes with it: stored, they would
    name a member that was never stored (and fail the batch's commit on PostgreSQL)."""
    kept, dropped = MemberFactory(client=client_a), MemberFactory(client=client_a)
    with changes.collected():
        changes.record(kept, {"email"})
        with pytest.raises(IntegrityError), changes.undone_with_the_savepoint(), transaction.atomic():
            changes.record(dropped, {"email"})
            raise IntegrityError("the row's number is taken")
    assert (changes_of(kept), changes_of(dropped)) == ([(changes.THE_PORTAL, "email")], [])
