"""First Orion in the admin and the client API: program contents validated in the form and the API (exactly one of
aNumbers / group, E.164, UUIDs) with the 20-character warning from real members, the segment and member push actions
with their confirmation page, the push list and its filters, the region that only site admins set, and tenancy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from integrations.first_orion import flows
from integrations.first_orion import sandbox as simulator
from integrations.first_orion.models import ProgramContent, Push, PushBatch
from integrations.models import JobRun
from members.models import Member, Segment
from members.segments import add_members
from portal.dashboard import build_dashboard
from tests.conftest import login
from tests.factories import ClientUserFactory

ADD_URL = reverse("admin:first_orion_programcontent_add")
GROUP = "935b91a0-f2fb-4c43-b629-63fea6634512"


@pytest.fixture
def simulated(fo_simulator):
    """The First Orion simulator over real HTTP, reset, for tests that run the push their request queued."""
    return fo_simulator


def form_data(client, **fields) -> dict:
    return {
        "client": client.pk,
        "name": "VIP offer",
        "program_content_uuid": "3E1B9B27-D1F9-4C8D-800F-BB534D6928D7",
        "a_numbers_text": "+15014008029\n+15013509988",
        "a_number_group_id": "",
        "ttl_seconds": 960,
        "personalization_text": "MY_VAR = Hi {first_name}",
        **fields,
    }


def test_a_client_user_adds_a_program_content_and_is_warned_of_long_values(alice_http, client_a):
    Member.objects.create(client=client_a, phone="+14045550001", first_name="Maximiliana-Josephine", opted_in=True)
    response = alice_http.post(ADD_URL, form_data(client_a), follow=True)
    assert response.status_code == 200
    content = ProgramContent.objects.get()
    assert content.a_numbers == ["+15014008029", "+15013509988"]
    assert content.program_content_uuid == "3e1b9b27-d1f9-4c8d-800f-bb534d6928d7"
    assert content.personalization == {"MY_VAR": "Hi {first_name}"}
    page = response.content.decode()
    assert "over 20 characters" in page and "Hi Maximiliana-Josephine" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"a_number_group_id": "935b91a0-f2fb-4c43-b629-63fea6634512"}, "exactly one of"),
        ({"a_numbers_text": ""}, "exactly one of"),
        ({"a_numbers_text": "5014008029"}, "E.164"),
        ({"a_numbers_text": "\n".join(f"+1404555{n:04d}" for n in range(401))}, "between 1 and 400"),
        ({"program_content_uuid": "not-a-uuid"}, "is not a UUID"),
        ({"personalization_text": "MY_VAR = {password}"}, "unknown placeholder"),
    ],
)
def test_the_form_refuses_bad_program_contents_with_field_messages(admin_http, client_a, fields, message):
    response = admin_http.post(ADD_URL, form_data(client_a, **fields))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ProgramContent.objects.exists()


def test_uuids_typed_without_hyphens_or_in_capitals_are_one_program_content(api_client_for, client_a):
    api = api_client_for(client_a)
    url = "/api/first-orion/program-contents/"
    typed = {"name": "Fraud check", "a_number_group_id": GROUP.replace("-", "").upper()}
    first = api.post(url, {**typed, "program_content_uuid": simulator.DEMO_PROGRAM.replace("-", "")}, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["program_content_uuid"] == simulator.DEMO_PROGRAM
    assert first.json()["a_number_group_id"] == GROUP
    again = api.post(url, {**typed, "program_content_uuid": simulator.DEMO_PROGRAM.upper()}, format="json")
    assert again.status_code == 400
    created = ProgramContent.objects.create(
        client=client_a, name="Code", program_content_uuid=f"{{{GROUP.upper()}}}", a_numbers=["+15014008029"]
    )
    created.refresh_from_db()
    assert created.program_content_uuid == GROUP
    assert ProgramContent.objects.count() == 2


def test_the_database_refuses_both_or_neither_number_sources(client_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        ProgramContent.objects.create(client=client_a, name="x", program_content_uuid=simulator.DEMO_PROGRAM)


def test_segment_action_confirms_then_queues_a_push(admin_http, client_a, fo_connection, content, simulated):
    members = [Member.objects.create(client=client_a, phone=f"+1404555000{n}", opted_in=True) for n in range(3)]
    Member.objects.create(client=client_a, phone="", email="nophone@x.com", opted_in=True)
    segment = Segment.objects.create(client=client_a, name="Callers")
    add_members(segment, Member.objects.all())
    url = reverse("admin:members_segment_changelist")
    base = {"action": "push_segment_content", "_selected_action": [segment.pk]}
    first = admin_http.post(url, base)
    assert "Choose the program content" in first.content.decode()
    preview = admin_http.post(url, {**base, "program_content": content.pk, "push_step": "preview"})
    page = preview.content.decode()
    assert "<strong>3</strong> destinations" in page and "<strong>2</strong> batches" in page
    assert "no mobile number" in page and "nophone@x.com" in page
    assert not Push.objects.exists()
    done = admin_http.post(url, {**base, "program_content": content.pk, "push_step": "confirm"}, follow=True)
    push = Push.objects.get()
    assert (push.segment, push.status, push.batches.count()) == (segment, "planning", 0)  # built by its task
    assert "Follow its progress" in done.content.decode()
    detail = admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk]))
    assert "planning" in detail.content.decode()
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert (push.status, push.destinations, push.batches_total, push.batches_sent) == ("sent", 3, 2, 2)
    detail = admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk]))
    assert "2 / 2 batches sent" in detail.content.decode()
    assert len(members) == 3


def test_member_action_pushes_the_selection(admin_http, client_a, fo_connection, content, simulated):
    chosen = [Member.objects.create(client=client_a, phone=f"+1404555000{n}", opted_in=True) for n in range(2)]
    url = reverse("admin:members_member_changelist")
    data = {"action": "push_members_content", "_selected_action": [m.pk for m in chosen]}
    admin_http.post(url, {**data, "program_content": content.pk, "push_step": "confirm"}, follow=True)
    push = Push.objects.get()
    assert (push.source, push.requested) == ("members", sorted(m.pk for m in chosen))
    flows.run_push(push.pk)
    assert Push.objects.get().destinations == 2


def test_push_list_filters_and_tenancy(alice_http, admin_http, client_a, client_b, content):
    other = ProgramContent.objects.create(
        client=client_b,
        name="Beta secret program",
        program_content_uuid=simulator.DEMO_PROGRAM,
        a_numbers=["+15014008029"],
    )
    Push.objects.create(client=client_a, program_content=content, source="numbers", status="failed")
    Push.objects.create(client=client_b, program_content=other, source="numbers", status="sent")
    url = reverse("admin:first_orion_push_changelist")
    mine = alice_http.get(url).content.decode()
    assert "Order ready" in mine and "Beta secret program" not in mine
    filtered = admin_http.get(url, {"status__exact": "failed", "program_content": content.pk}).content.decode()
    assert "Order ready" in filtered and "Beta secret program" not in filtered.split("changelist-filter")[0]
    assert alice_http.get(reverse("admin:first_orion_programcontent_change", args=[other.pk])).status_code == 302


def test_only_a_site_admin_changes_the_region(alice_http, admin_http, client_a, fo_connection):
    url = reverse("admin:integrations_connection_change", args=[fo_connection.pk])
    data = {
        "environment": "production",
        "base_url": "",
        "setting__client_id": "sandbox-fo-client",
        "setting__region": "international",
        "setting__batch_size": 2,
    }
    alice_http.post(url, data)
    fo_connection.refresh_from_db()
    assert fo_connection.settings.get("region", "us") == "us"
    admin_http.post(url, data)
    fo_connection.refresh_from_db()
    assert fo_connection.settings["region"] == "international"
    assert fo_connection.effective_base_url == "https://api.engage-ae.com"


# --- Client API --------------------------------------------------------------------------------------------------


def test_api_creates_a_program_content_and_refuses_both_number_sources(api_client_for, client_a):
    api = api_client_for(client_a)
    url = "/api/first-orion/program-contents/"
    body = {"name": "Fraud check", "program_content_uuid": simulator.DEMO_PROGRAM, "a_numbers": ["+15014008029"]}
    created = api.post(url, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["ttl_seconds"] == 960 and created.json()["keep_after_call"] is False
    both = api.post(
        url,
        {
            **body,
            "program_content_uuid": "3e1b9b27-d1f9-4c8d-800f-bb534d6928d8",
            "a_number_group_id": simulator.DEMO_PROGRAM,
        },
        format="json",
    )
    assert both.status_code == 400 and "exactly one of" in str(both.json()["a_numbers"])
    again = api.post(url, body, format="json")
    assert again.status_code == 400


def test_api_push_answers_202_with_location_and_status(api_client_for, client_a, fo_connection, content, simulated):
    api = api_client_for(client_a)
    response = api.post(
        "/api/first-orion/pushes/", {"program_content": content.pk, "numbers": ["+14045550001"]}, format="json"
    )
    assert response.status_code == 202, response.content
    push = Push.objects.get()
    assert response["Location"].endswith(f"/api/first-orion/pushes/{push.pk}/")
    status = api.get(response["Location"]).json()
    assert status["status"] == "planning" and status["planning_total"] == 1 and status["batches"] == {}
    flows.run_push(push.pk)
    status = api.get(response["Location"]).json()
    assert (status["status"], status["planning_read"], status["destinations"]) == ("sent", 1, 1)
    assert status["batches"] == {"sent": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"numbers": ["+14045550001"], "members": [1]}, "non_field_errors"),
        ({}, "non_field_errors"),
        ({"numbers": []}, "numbers"),
        ({"members": [999999]}, "members"),
    ],
)
def test_api_push_refuses_bad_requests_with_field_messages(
    api_client_for, client_a, fo_connection, content, body, field
):
    response = api_client_for(client_a).post(
        "/api/first-orion/pushes/", {"program_content": content.pk, **body}, format="json"
    )
    assert response.status_code == 400 and field in response.json()
    assert not Push.objects.exists()


@pytest.mark.parametrize(("field", "item"), [("members", 1), ("numbers", "+14045550001")])
def test_api_push_refuses_an_overlong_list_with_a_field_message(
    api_client_for, client_a, fo_connection, content, field, item
):
    response = api_client_for(client_a).post(
        "/api/first-orion/pushes/", {"program_content": content.pk, field: [item] * 100_001}, format="json"
    )
    assert response.status_code == 400 and "At most 100000" in str(response.json()[field])
    assert not Push.objects.exists()


def test_api_push_of_another_clients_content_is_refused(api_client_for, client_b, fo_connection, content):
    response = api_client_for(client_b).post(
        "/api/first-orion/pushes/", {"program_content": content.pk, "numbers": ["+14045550001"]}, format="json"
    )
    assert response.status_code == 400 and "program_content" in response.json()
    assert api_client_for(client_b).get("/api/first-orion/program-contents/").json()["results"] == []


def test_api_push_without_an_active_connection_is_409(api_client_for, client_a, content):
    response = api_client_for(client_a).post(
        "/api/first-orion/pushes/", {"program_content": content.pk, "numbers": ["+14045550001"]}, format="json"
    )
    assert response.status_code == 409 and "not active" in response.json()["message"]


def test_client_user_of_b_cannot_see_a_push_of_a(client_b, client_a, content):
    bob = login(ClientUserFactory(username="bob", client=client_b))
    push = Push.objects.create(client=client_a, program_content=content, source="numbers")
    assert bob.get(reverse("admin:first_orion_push_change", args=[push.pk])).status_code == 302


def test_api_patch_switches_a_content_to_a_group(api_client_for, client_a, content):
    api = api_client_for(client_a)
    url = f"/api/first-orion/program-contents/{content.pk}/"
    half = api.patch(url, {"a_number_group_id": "935b91a0-f2fb-4c43-b629-63fea6634512"}, format="json")
    assert half.status_code == 400 and "exactly one of" in str(half.json())
    done = api.patch(url, {"a_numbers": [], "a_number_group_id": "935B91A0-F2FB-4C43-B629-63FEA6634512"}, format="json")
    assert done.status_code == 200, done.content
    content.refresh_from_db()
    assert (content.a_numbers, content.a_number_group_id) == ([], "935b91a0-f2fb-4c43-b629-63fea6634512")


def test_api_delete_of_a_content_with_pushes_is_409_and_without_pushes_204(api_client_for, client_a, content):
    api = api_client_for(client_a)
    Push.objects.create(client=client_a, program_content=content, source="numbers")
    kept = api.delete(f"/api/first-orion/program-contents/{content.pk}/")
    assert kept.status_code == 409 and "has pushes" in kept.json()["message"]
    assert ProgramContent.objects.filter(pk=content.pk).exists()
    unused = ProgramContent.objects.create(
        client=client_a, name="Unused", program_content_uuid=GROUP, a_number_group_id=GROUP
    )
    assert api.delete(f"/api/first-orion/program-contents/{unused.pk}/").status_code == 204


def test_deleting_a_client_deletes_its_contents_and_pushes(client_a, content):
    push = Push.objects.create(client=client_a, program_content=content, source="numbers")
    PushBatch.objects.create(push=push, index=0, size=1, destinations=[{"bNumber": "+14045550001"}])
    client_a.delete()
    assert not Push.objects.exists() and not ProgramContent.objects.exists() and not PushBatch.objects.exists()


def test_a_user_without_the_push_permission_cannot_push(client_a, fo_connection, content):

    viewer = ClientUserFactory(username="viewer", client=client_a)
    viewer.groups.clear()
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_segment"]))
    segment = Segment.objects.create(client=client_a, name="Callers")
    response = login(viewer).post(
        reverse("admin:members_segment_changelist"),
        {
            "action": "push_segment_content",
            "_selected_action": [segment.pk],
            "program_content": content.pk,
            "push_step": "confirm",
        },
        follow=True,
    )
    assert "You may not push" in response.content.decode()
    assert not Push.objects.exists()


def test_the_dashboard_lists_failed_pushes_of_the_last_day_and_charts_pushed_destinations(
    alice_http, admin_http, client_a, client_b, content
):
    other = ProgramContent.objects.create(
        client=client_b, name="Beta program", program_content_uuid=simulator.DEMO_PROGRAM, a_numbers=["+15014008029"]
    )
    failed = Push.objects.create(
        client=client_a, program_content=content, source="numbers", status="failed", error="Not allowed to use anumbers"
    )
    Push.objects.create(client=client_b, program_content=other, source="numbers", status="uncertain")
    old = Push.objects.create(client=client_a, program_content=content, source="numbers", status="failed")
    Push.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    sent = Push.objects.create(client=client_a, program_content=content, source="numbers", status="sent")
    # Settled as its runner settles it: the chart reads the rollups kept as batches settle.
    batch = PushBatch.objects.create(push=sent, index=0, size=7, destinations=[], status="sending")
    flows.settle(sent, batch, PushBatch.Status.SENT, request_id="req-1")
    mine = alice_http.get("/admin/").content.decode()
    assert f"First Orion push #{failed.pk}" in mine and "Not allowed to use anumbers" in mine
    assert f"First Orion push #{old.pk}" not in mine  # older than a day
    assert "Beta" not in mine  # client B's uncertain push is not client A's user's business
    assert "uncertain" in admin_http.get("/admin/").content.decode().lower()
    chart = next(
        c for c in build_dashboard(client_a.users.get()).charts if c.title == "Branded-call destinations pushed"
    )
    assert chart.total == 7


def test_other_clients_many_failed_pushes_do_not_hide_the_viewers_own(alice_http, client_a, client_b, content):
    mine = Push.objects.create(client=client_a, program_content=content, source="numbers", status="failed")
    Push.objects.filter(pk=mine.pk).update(created_at=timezone.now() - timedelta(hours=1))
    other = ProgramContent.objects.create(
        client=client_b, name="Beta program", program_content_uuid=simulator.DEMO_PROGRAM, a_numbers=["+15014008029"]
    )
    Push.objects.bulk_create(
        Push(client=client_b, program_content=other, source="numbers", status="failed") for _ in range(60)
    )
    assert f"First Orion push #{mine.pk}" in alice_http.get("/admin/").content.decode()


def test_a_push_being_sent_shows_a_live_progress_bar_on_its_page(admin_http, client_a, content):
    run = JobRun.objects.create(job="first_orion.run_push", client=client_a, done=3, total=4)
    push = Push.objects.create(
        client=client_a, program_content=content, source="numbers", status="sending", batches_total=4, batches_sent=3,
        job_run=run,
    )  # fmt: skip
    page = admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk])).content.decode()
    assert 'class="job-progress"' in page and "75%" in page and "job_progress.js" in page
    run.outcome = JobRun.Outcome.SUCCEEDED
    run.save()
    assert (
        'class="job-progress"'
        not in admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk])).content.decode()
    )
