"""First Orion's request budget (issue 21, finding 7): personalization is bounded at entry (model, API, admin: one
rule), and a push's destinations and batches are built by its task, never in the web request that asks for it —
that request records the push as `planning` and answers at once, whatever the push's size."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.first_orion import destinations, flows
from integrations.first_orion import sandbox as simulator
from integrations.first_orion.models import ProgramContent, Push, PushBatch
from integrations.job_runs import run_job
from members.models import Member, Segment
from members.segments import add_members

CONTENTS = "/api/first-orion/program-contents/"
PUSHES = "/api/first-orion/pushes/"
ADD_URL = reverse("admin:first_orion_programcontent_add")


@pytest.fixture
def fo(fo_simulator, fo_connection):
    """Client A's active First Orion connection on the simulator (batches of 2), the simulator reset."""
    return fo_simulator


def variables(count: int) -> dict[str, str]:
    return {f"VAR_{n}": "Hi {first_name}" for n in range(count)}


def members(client, count: int, start: int = 0) -> list[Member]:
    return Member.objects.bulk_create(
        Member(client=client, phone=f"+1404555{n:04d}", first_name=f"Ann{n}", opted_in=True)
        for n in range(start, start + count)
    )


def received() -> dict[str, int]:
    """How many times the simulator was pushed each number (its own record)."""
    with simulator.state.lock:
        return dict(simulator.state.received)


# --- Personalization bounded at entry ------------------------------------------------------------------------------

OVER_THE_BOUNDS = [
    (variables(21), "At most 20 variables (got 21)"),
    ({"V" * 51: "Hi"}, "at most 50 characters"),
    ({"MY_VAR": "x" * 101}, "at most 100 characters (got 101)"),
    # The size the audit stored: a 2.4 MB value, and 20,000 variables.
    ({"MY_VAR": "x" * 2_400_000}, "at most 100 characters (got 2400000)"),
    (variables(20_000), "At most 20 variables (got 20000)"),
]


@pytest.mark.parametrize(("personalization", "message"), OVER_THE_BOUNDS)
def test_the_model_refuses_personalization_over_its_bounds_in_a_short_message(content, personalization, message):
    content.personalization = personalization
    with pytest.raises(ValidationError) as refused:
        content.full_clean()
    messages = refused.value.message_dict["personalization"]
    assert message in " ".join(messages) and len(" ".join(messages)) < 200


def test_personalization_at_its_bounds_is_accepted(content):
    content.personalization = {f"{'V' * 48}{n:02d}": "x" * 100 for n in range(20)}
    content.full_clean()


@pytest.mark.parametrize(("personalization", "message"), OVER_THE_BOUNDS[:4])
def test_the_api_answers_400_with_the_field_message_and_stores_nothing(
    api_client_for, client_a, personalization, message
):
    body = {"name": "VIP", "a_number_group_id": simulator.DEMO_PROGRAM, "personalization": personalization}
    answer = api_client_for(client_a).post(CONTENTS, {**body, "program_content_uuid": simulator.DEMO_PROGRAM}, "json")
    assert answer.status_code == 400 and message in " ".join(answer.json()["personalization"])
    assert not ProgramContent.objects.exists()


def test_the_api_refuses_to_grow_a_stored_content_past_the_bounds(api_client_for, client_a, content):
    answer = api_client_for(client_a).patch(f"{CONTENTS}{content.pk}/", {"personalization": variables(21)}, "json")
    assert answer.status_code == 400 and "At most 20 variables" in str(answer.json()["personalization"])
    content.refresh_from_db()
    assert content.personalization == {"MY_VAR": "Hi {first_name}"}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("\n".join(f"VAR_{n} = Hi" for n in range(21)), "At most 20 variables (got 21)"),
        (f"{'V' * 51} = Hi", "at most 50 characters"),
        (f"MY_VAR = {'x' * 101}", "at most 100 characters (got 101)"),
    ],
)
def test_the_admin_form_shows_the_bounds_as_form_errors_and_stores_nothing(alice_http, client_a, lines, message):
    form = {
        "client": client_a.pk,
        "name": "VIP offer",
        "program_content_uuid": simulator.DEMO_PROGRAM,
        "a_numbers_text": "+15014008029",
        "a_number_group_id": "",
        "ttl_seconds": 960,
        "personalization_text": lines,
    }
    page = alice_http.post(ADD_URL, form)
    assert page.status_code == 200 and message in page.content.decode()
    assert "errorlist" in page.content.decode()
    assert not ProgramContent.objects.exists()


def test_a_content_stored_over_the_bounds_before_they_applied_is_not_pushed(api_client_for, fo, client_a, content):
    ProgramContent.objects.filter(pk=content.pk).update(personalization=variables(21))  # as an old row may be
    members(client_a, 2)
    answer = api_client_for(client_a).post(PUSHES, {"program_content": content.pk, "numbers": ["+14045550001"]}, "json")
    assert answer.status_code == 409 and "Fix the personalization" in answer.json()["message"]
    assert not Push.objects.exists()


# --- The push is planned by its task -------------------------------------------------------------------------------


def push_a_segment(api, content, segment) -> tuple[int, object]:
    """POST the push; (queries the request ran, the answer)."""
    with CaptureQueriesContext(db) as queries:
        answer = api.post(PUSHES, {"program_content": content.pk, "segment": segment.pk}, format="json")
    return len(queries), answer


def test_the_request_that_asks_for_a_push_builds_no_batch_and_its_queries_do_not_grow_with_it(
    api_client_for, fo, client_a, content
):
    api = api_client_for(client_a)
    small, large = (Segment.objects.create(client=client_a, name=name) for name in ("small", "large"))
    add_members(small, Member.objects.filter(pk__in=[m.pk for m in members(client_a, 3)]))
    add_members(large, Member.objects.filter(pk__in=[m.pk for m in members(client_a, 300, start=100)]))

    small_queries, _ = push_a_segment(api, content, small)
    large_queries, answer = push_a_segment(api, content, large)

    assert answer.status_code == 202, answer.content
    assert answer.json()["status"] == "planning" and answer.json()["batches_total"] == 0
    assert not PushBatch.objects.exists()  # the task (queued after commit, not run here) builds them
    assert large_queries == small_queries
    assert received() == {}


def test_a_push_of_member_ids_is_recorded_as_asked_and_planned_by_its_task(api_client_for, fo, client_a, content):
    api = api_client_for(client_a)
    chosen = members(client_a, 5)
    answer = api.post(PUSHES, {"program_content": content.pk, "members": [m.pk for m in chosen]}, format="json")
    assert answer.status_code == 202 and answer.json()["planning_total"] == 5
    assert not PushBatch.objects.exists()

    flows.run_push(answer.json()["id"])

    shown = api.get(answer["Location"]).json()
    assert (shown["status"], shown["planning_read"], shown["destinations"], shown["batches_total"]) == ("sent", 5, 5, 3)
    assert shown["planned_at"] is not None
    assert received() == {m.phone: 1 for m in chosen}
    assert Push.objects.get().requested == []  # what was asked is not kept once planned: the batches are the record


def test_planning_reads_members_a_chunk_at_a_time_in_member_order(client_a):
    chosen = members(client_a, 7)
    chunks = list(destinations.member_chunks(Member.objects.all(), size=3))
    assert [len(rows) for rows in chunks] == [3, 3, 1]
    assert [row["pk"] for rows in chunks for row in rows] == [m.pk for m in chosen]


def test_the_task_shows_planning_progress_on_its_job_run(fo, client_a, content):
    members(client_a, 4)
    push = flows.create_push(content, members=Member.objects.all())

    def plan_only() -> dict[str, int]:
        assert flows.claim(push) and flows.build_batches(push, 2)
        return {}

    run = run_job("first_orion.run_push", plan_only, client=client_a)

    push.refresh_from_db()
    assert (run.done, run.total) == (4, 4) and (push.planning_read, push.planning_total) == (4, 4)
    assert push.batches.count() == 2 and received() == {}


def test_an_interrupted_planning_starts_again_and_each_number_is_pushed_once(fo, client_a, content):
    members(client_a, 5)
    push = flows.create_push(content, members=Member.objects.all())
    # As a worker killed while planning leaves it: a batch written, the push not planned, its claim lapsed.
    PushBatch.objects.create(push=push, index=0, size=1, destinations=[{"bNumber": "+14045550000"}])
    assert flows.resume_pushes() == {"queued": 1}

    flows.run_push(push.pk)

    push.refresh_from_db()
    assert (push.status, push.destinations, push.batches_total, push.batches_sent) == ("sent", 5, 3, 3)
    assert list(push.batches.values_list("index", flat=True)) == [0, 1, 2]
    assert received() == {f"+1404555{n:04d}": 1 for n in range(5)}


def test_a_push_whose_segment_was_deleted_before_planning_fails_saying_why(fo, client_a, content):
    segment = Segment.objects.create(client=client_a, name="Gone")
    add_members(segment, Member.objects.filter(pk__in=[m.pk for m in members(client_a, 2)]))
    push = flows.create_push(content, segment=segment)
    segment.delete()

    flows.run_push(push.pk)

    push.refresh_from_db()
    assert push.status == "failed" and "Nothing to push to" in push.error and push.finished_at is not None
    assert received() == {}


def test_the_push_page_shows_planning_with_its_progress(admin_http, fo, client_a, content):
    members(client_a, 3)
    push = flows.create_push(content, members=Member.objects.all())
    page = admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk])).content.decode()
    assert "planning: 0 / 3 read" in page


# --- The budget in the API schema ----------------------------------------------------------------------------------


def test_the_api_schema_documents_the_request_budget(admin_http):
    schema = admin_http.get("/api/schema/", {"format": "json"}).content.decode()
    assert "Request budget" in schema and "At most 20 variables" in schema
    assert "builds the destinations and batches" in schema and "planning_read" in schema


def test_a_runner_that_lost_the_push_while_planning_leaves_it_to_the_new_holder(fo, client_a, content):
    members(client_a, 3)
    push = flows.create_push(content, members=Member.objects.all())
    assert flows.claim(push)
    Push.objects.filter(pk=push.pk).update(holder="task-2")  # its claim lapsed and another runner took the push

    assert not flows.build_batches(push, 2)

    push.refresh_from_db()
    assert (push.planned_at, push.status, push.holder) == (None, "planning", "task-2") and received() == {}
