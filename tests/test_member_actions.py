"""One-off actions for a member at a vendor are on the member's timeline with the calls they made (issue 24): an
Attentive eligibility check or e-mail unsubscribe, a refresh from Annex Cloud, a points adjustment, SessionM's
eligible campaigns — from the admin, the API, a job or another flow alike (members/actions.py). A reason of the
portal's (no mobile number) is shown as the portal's, not as the vendor's failure. Over real HTTP against the
simulators."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.attentive import flows as attentive
from integrations.attentive.tasks import attentive_unsubscribe
from integrations.models import VendorCall
from integrations.retention import prune_old_records
from integrations.sessionm import sandbox as sessionm_simulator
from members import timeline
from members.models import MemberAction
from tests.factories import MemberFactory, simulator_connection
from tests.test_admin_actions import run_action

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = "+14155550176"
Result = MemberAction.Result


def actions_of(member) -> list[tuple[str, str, str, str]]:
    rows = MemberAction.objects.filter(member=member).order_by("pk")
    return list(rows.values_list("vendor", "action", "result", "said"))


def calls_of(member) -> list[VendorCall]:
    ids = [pk for action in MemberAction.objects.filter(member=member).order_by("pk") for pk in action.call_ids]
    return list(VendorCall.objects.filter(pk__in=ids).order_by("pk"))


def path_of(call: VendorCall) -> str:
    return call.url.split("?")[0]


def test_an_eligibility_check_from_the_admin_or_the_api_is_on_the_timeline_with_its_call(
    sandbox_attentive_connection, admin_http, api_client_for, client_a
):
    member = MemberFactory(client=client_a, phone=PHONE, email="ada@example.com")

    run_action(admin_http, "members.member", "check_attentive_eligibility", [member])
    assert api_client_for(client_a).post(f"/api/members/{member.pk}/eligibility/").status_code == 200

    actions = actions_of(member)
    assert [(v, a, r) for v, a, r, _ in actions] == [("attentive", "Eligibility check", Result.DONE)] * 2
    assert all(said.startswith(f"{member}: TEXT ") for *_, said in actions)
    calls = calls_of(member)
    assert [(call.method, path_of(call).endswith("/v1/subscriptions")) for call in calls] == [("GET", True)] * 2
    entries = [entry for entry in timeline.timeline(member) if entry.kind == "action"]
    assert [(e.vendor, e.title, e.status) for e in entries] == [("Attentive", "Eligibility check", "done")] * 2
    assert {link.url for entry in entries for link in entry.related} == {timeline.admin_url(call) for call in calls}

    # On the timeline page and in its API, with the calls linked.
    page = admin_http.get(reverse("admin:members_member_timeline", args=[member.pk])).content.decode()
    assert page.count('class="timeline-action"') == 2 and timeline.admin_url(calls[0]) in page
    body = api_client_for(client_a).get(f"/api/members/{member.pk}/timeline/").json()
    [first, *_] = [entry for entry in body["entries"] if entry["kind"] == "action"]
    assert first["title"] == "Eligibility check" and first["related"][0]["url"] == timeline.admin_url(calls[-1])


def test_an_email_unsubscribe_run_by_the_job_is_on_the_timeline_with_its_call(sandbox_attentive_connection, client_a):
    member = MemberFactory(client=client_a, phone=PHONE, email="ada@example.com")

    attentive_unsubscribe.apply(args=(member.pk, [attentive.EMAIL]))

    [(vendor, action, result, said)] = actions_of(member)
    assert (vendor, action, result) == ("attentive", "E-mail unsubscribe", Result.DONE) and "e-mail" in said
    [call] = calls_of(member)
    assert call.method == "POST" and path_of(call).endswith("/v1/subscriptions/unsubscribe")


def test_a_check_the_portal_cannot_make_is_the_portals_reason_not_the_vendors_failure(
    sandbox_attentive_connection, api_client_for, client_a
):
    member = MemberFactory(client=client_a, phone="")

    assert api_client_for(client_a).post(f"/api/members/{member.pk}/eligibility/").status_code == 409

    [(_, action, result, said)] = actions_of(member)
    assert (action, result) == ("Eligibility check", Result.NOT_SENT) and said.startswith("Not sent by the portal: ")
    assert calls_of(member) == []
    [entry] = [entry for entry in timeline.timeline(member) if entry.kind == "action"]
    assert entry.status == "not sent (the portal's reason)"


def test_a_refresh_annex_cloud_answers_no_member_to_is_on_the_timeline_as_failed_with_its_call(
    annex_cloud_sandbox, admin_http, client_a
):
    member = MemberFactory(client=client_a, annex_cloud_id="AC-404")

    run_action(admin_http, "members.member", "refresh_from_annex_cloud", [member])

    assert actions_of(member) == [
        ("annex_cloud", "Refresh from Annex Cloud", Result.FAILED, "AC-404 is not a loyalty member at Annex Cloud.")
    ]
    [call] = calls_of(member)
    assert call.method == "GET" and call.url.endswith("/users/AC-404")  # Annex Cloud's AC1005, "no data"


def test_a_points_adjustment_is_on_the_timeline_with_the_call_that_applied_it(
    annex_cloud_sandbox, api_client_for, client_a
):
    state, _ = annex_cloud_sandbox
    member = MemberFactory(client=client_a, email="ann@x.com")
    state.members["ann@x.com"] = {"id": "ann@x.com", "email": "ann@x.com", "availablePoints": 100}

    answer = api_client_for(client_a).post(
        f"/api/members/{member.pk}/points/",
        {"activity": "credit", "points": 20, "idempotency_key": "k-1"},
        format="json",
    )

    assert answer.status_code == 201, answer.content
    [(vendor, action, result, said)] = actions_of(member)
    assert (vendor, action, result) == ("annex_cloud", "Points adjustment", Result.DONE) and "20" in said
    assert [call.method for call in calls_of(member)] == ["POST"]


def test_sessionm_campaigns_looked_up_from_the_admin_are_on_the_timeline_with_the_call(
    sessionm_sandbox, admin_http, client_a
):
    simulator_connection(client_a, "sessionm", sessionm_simulator)
    member = MemberFactory(client=client_a)
    sessionm_sandbox.users["u-7"] = {"id": "u-7", "external_id": f"portal-{member.pk}"}  # known at SessionM
    sessionm_sandbox.by_external_id[f"portal-{member.pk}"] = "u-7"

    run_action(admin_http, "members.member", "show_campaigns", [member])

    [(vendor, action, result, said)] = actions_of(member)
    assert (vendor, action, result, said) == ("sessionm", "Eligible campaigns", Result.DONE, "2 eligible campaigns.")
    assert [call.method for call in calls_of(member)] == ["GET"]


def test_an_action_the_vendor_fails_is_recorded_with_its_words_and_every_attempt(
    sandbox_attentive_connection, attentive_sandbox, api_client_for, client_a, settings
):
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "500", "subscriptions", 99
    member = MemberFactory(client=client_a, phone=PHONE)

    assert api_client_for(client_a).post(f"/api/members/{member.pk}/eligibility/").status_code == 502

    [(_, action, result, said)] = actions_of(member)
    assert (action, result) == ("Eligibility check", Result.FAILED) and "Attentive" in said
    calls = calls_of(member)
    assert len(calls) >= 2 and {call.status_code for call in calls} == {500}  # each attempt of the GET


def test_member_actions_are_pruned_with_member_changes(client_a, settings):
    member = MemberFactory(client=client_a)
    fields = {"member": member, "vendor": "attentive", "action": "Eligibility check", "result": Result.DONE}
    old = MemberAction.objects.create(**fields)
    MemberAction.objects.filter(pk=old.pk).update(done_at=timezone.now() - timedelta(days=31))
    MemberAction.objects.create(**fields)
    settings.MEMBER_CHANGE_RETENTION_DAYS = 30

    assert prune_old_records()["member_actions"] == 1
    assert MemberAction.objects.count() == 1
