"""SMS consent is its own thing: Annex Cloud's `optInStatus` is the loyalty program's opt-in (seed 003, default YES),
kept in its own field (shown, filterable, exported) and never the SMS opt-in; the members whose SMS opt-in may have
come only from Annex Cloud are listed for the client to review, and nothing is changed (issue 20, finding 11)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.urls import reverse

from integrations.annexcloud.flows import refresh_member
from integrations.models import WebhookEvent
from integrations.vibes.models import VibesListSubscription
from members import sync
from members.exports import stream_segment_csv
from members.models import Member
from members.segments import add_members
from tests.factories import ConnectionFactory, MemberFactory, SegmentFactory


def test_a_refresh_with_opt_in_yes_leaves_sms_off_and_subscribes_nobody(
    annex_cloud_sandbox, attentive_sandbox, sandbox_attentive_connection, client_a
):
    annex, _ = annex_cloud_sandbox
    member = MemberFactory(client=client_a, email="jo@x.com", phone="+14045550123", opted_in=False)
    annex.members["jo@x.com"] = {"id": "ac-7", "email": "jo@x.com", "optInStatus": "YES", "status": "ACTIVE"}
    assert refresh_member(member).ok
    sync.reconcile_pending(client_a.pk)  # whatever the refresh recorded for the vendors goes out
    assert attentive_sandbox.subscribed == set()  # Attentive was never asked to text the member
    member.refresh_from_db()
    assert (member.opted_in, member.loyalty_opted_in) == (False, True)


def test_a_loyalty_opt_out_leaves_an_sms_opt_in_as_it_is(annex_cloud_sandbox, client_a):
    annex, _ = annex_cloud_sandbox
    member = MemberFactory(client=client_a, email="jo@x.com", opted_in=True)
    annex.members["jo@x.com"] = {"id": "jo@x.com", "email": "jo@x.com", "optInStatus": "NO"}
    assert refresh_member(member).ok
    member.refresh_from_db()
    assert member.opted_in  # a loyalty opt-out never unsubscribes SMS
    assert member.loyalty_opted_in is False


def test_the_loyalty_opt_in_is_shown_filterable_exported_and_read_only_in_the_api(admin_http, api_client_for, client_a):
    yes = MemberFactory(client=client_a, first_name="Yes", loyalty_opted_in=True)
    no = MemberFactory(client=client_a, first_name="No", loyalty_opted_in=False)
    unread = MemberFactory(client=client_a, first_name="Unread")
    changelist = reverse("admin:members_member_changelist")
    filtered = admin_http.get(changelist, {"loyalty_opted_in__exact": "0"})
    assert list(filtered.context["cl"].result_list) == [no]
    assert "loyalty opt-in (Annex Cloud)" in admin_http.get(changelist).content.decode()
    page = admin_http.get(reverse("admin:members_member_change", args=[no.pk])).content.decode()
    assert "Loyalty opt-in (Annex Cloud)" in page and "SMS opt-in" in page
    segment = SegmentFactory(client=client_a)
    add_members(segment, Member.objects.all())
    rows = list(csv.DictReader(io.StringIO(b"".join(stream_segment_csv(segment)).decode())))
    assert {row["first_name"]: row["loyalty_opt_in"] for row in rows} == {"Yes": "yes", "No": "no", "Unread": ""}
    api = api_client_for(client_a)
    assert api.get(f"/api/members/{unread.pk}/").json()["loyalty_opted_in"] is None
    api.patch(f"/api/members/{yes.pk}/", {"loyalty_opted_in": False}, format="json")
    yes.refresh_from_db()
    assert yes.loyalty_opted_in is True  # Annex Cloud's value, changed there only


# --- The one-off report ------------------------------------------------------------------------------------------


def report(*args: str) -> tuple[list[dict[str, str]], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("report_annex_cloud_sms_consent", *args, stdout=out, stderr=err)
    return list(csv.DictReader(io.StringIO(out.getvalue()))), err.getvalue()


@pytest.fixture
def members(client_a, client_b) -> dict[str, Member]:
    """Opted-in members with and without an SMS source on record, as the refreshes before this release left them."""
    made = {
        "only_annex_cloud": MemberFactory(client=client_a, annex_cloud_id="ac-1", opted_in=True),
        "read_since": MemberFactory(client=client_a, opted_in=True, annex_cloud_read_at=datetime.now(UTC)),
        "vibes_source": MemberFactory(client=client_a, annex_cloud_id="ac-2", opted_in=True),
        "attentive_source": MemberFactory(client=client_a, annex_cloud_id="ac-3", opted_in=True),
        "never_at_annex_cloud": MemberFactory(client=client_a, opted_in=True),
        "not_opted_in": MemberFactory(client=client_a, annex_cloud_id="ac-4", opted_in=False),
        "other_client": MemberFactory(client=client_b, annex_cloud_id="ac-1", opted_in=True),
    }
    VibesListSubscription.objects.create(
        client=client_a,
        member=made["vibes_source"],
        person_id="P2",
        list_id="L1",
        state=VibesListSubscription.State.SUBSCRIBED,
        last_event_date=datetime.now(UTC),
    )
    body = {"type": "sms.subscribed", "subscriber": {"phone": made["attentive_source"].phone}}
    WebhookEvent.objects.create(
        connection=ConnectionFactory(client=client_a), event_type="sms.subscribed", body=json.dumps(body)
    )
    return made


def test_the_report_lists_the_members_whose_sms_opt_in_only_annex_cloud_can_explain(members, client_a):
    rows, summary = report()
    listed = [int(row["member"]) for row in rows]
    expected = ["only_annex_cloud", "read_since", "other_client"]
    assert sorted(listed) == sorted(members[name].pk for name in expected)
    assert "3 members have" in summary and "Nothing was changed" in summary
    assert [row["annex_cloud_id"] for row in report("--client", client_a.slug)[0]] == ["ac-1", ""]
    # A report, not a fix: nobody was unsubscribed or confirmed.
    assert Member.objects.filter(opted_in=True).count() == 6
