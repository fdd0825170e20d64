"""Filling segments, pushing them to Annex Cloud (over real HTTP to the simulator), importing members from CSV and
refreshing them from Annex Cloud."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.urls import reverse

from integrations.annexcloud.flows import push_segment as push_to_annex_cloud
from integrations.annexcloud.flows import refresh_member
from integrations.models import Connection
from members.models import Member
from members.segments import add_members, add_members_by_emails, apply_saved_filter
from tests.factories import MemberFactory, SegmentFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(client_a, client_b):
    return {
        "jacob": MemberFactory(client=client_a, email="JacobSmith@gmail.com", opted_in=True, tier="Gold"),
        "brian": MemberFactory(client=client_a, email="brianpaul@gmail.com", opted_in=False, tier="Gold"),
        "mark": MemberFactory(client=client_a, email="markburger@gmail.com", opted_in=True, tier="Silver"),
        "other": MemberFactory(client=client_b, email="other@gmail.com", opted_in=True, tier="Gold"),
    }


@pytest.fixture
def segment(client_a):
    return SegmentFactory(
        client=client_a,
        name="Only Members",
        from_date=date(2020, 1, 17),
        to_date=date(2020, 2, 14),
        external_id="123",
        external_name="Members specific",
    )


def test_add_by_email_list_reports_unknown_addresses(segment, people):
    added, unknown = add_members_by_emails(segment, "jacobsmith@gmail.com, brianpaul@gmail.com,nobody@x.com")
    assert added == 2 and unknown == ["nobody@x.com"]
    assert add_members_by_emails(segment, "jacobsmith@gmail.com")[0] == 0  # already in


def test_members_of_another_client_never_join(segment, people):
    assert add_members(segment, Member.objects.all()) == 3
    assert not segment.members.filter(pk=people["other"].pk).exists()


def test_saved_filter(segment, people):
    segment.saved_filter = {"opted_in": True, "tier": "Gold"}
    assert apply_saved_filter(segment) == 1
    assert list(segment.members.all()) == [people["jacob"]]


def test_push_to_annex_cloud_sends_the_documented_request_and_keeps_the_id(segment, people, annex_cloud_sandbox):
    state, _ = annex_cloud_sandbox
    add_members(segment, Member.objects.all())
    outcome = push_to_annex_cloud(segment)
    assert outcome.ok, outcome.message
    assert state.segments == {
        101: {
            "name": "Only Members",
            "type": "Current Data",
            "fromDate": "2020-01-17",
            "toDate": "2020-02-14",
            "member": "JacobSmith@gmail.com,brianpaul@gmail.com,markburger@gmail.com",
            "status": "ACTIVE",
            "externalId": "123",
            "externalName": "Members specific",
        }
    }
    segment.refresh_from_db()
    assert segment.annex_cloud_segment_id == "101" and segment.pushed_at


def test_push_errors_reach_the_admin_in_plain_words(segment, annex_cloud_sandbox, admin_http):
    _, connection = annex_cloud_sandbox
    connection.secrets = {"api_secret": "wrong-secret-wrong-secret-wrong-secret"}
    connection.save()
    response = admin_http.post(
        reverse("admin:members_segment_changelist"),
        {"action": "push_to_annex_cloud", "_selected_action": [segment.pk]},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Annex Cloud refused segment 'Only Members'" in text and "API shared secret" in text


def test_push_without_credentials_says_where_to_enter_them(segment):
    outcome = push_to_annex_cloud(segment)
    assert not outcome.ok and "Annex Cloud site credentials" in outcome.message


def test_refresh_member_from_annex_cloud(client_a, annex_cloud_sandbox):
    state, _ = annex_cloud_sandbox
    state.members["jack@x.com"] = {
        "id": "jack@x.com",
        "email": "jack@x.com",
        "firstName": "Jack",
        "lastName": "Lee",
        "zipCode": "90002",
        "optInStatus": "YES",
        "status": "ACTIVE",
        "phone": "404-555-0123",
    }
    member = MemberFactory(client=client_a, email="jack@x.com")
    assert refresh_member(member).ok
    member.refresh_from_db()
    # optInStatus is the loyalty opt-in: it is stored as such and leaves the SMS opt-in off (issue 20, finding 11).
    assert (member.first_name, member.phone, member.loyalty_opted_in, member.opted_in, member.annex_cloud_id) == (
        "Jack",
        "+14045550123",
        True,
        False,
        "jack@x.com",
    )
    unknown = MemberFactory(client=client_a, email="ghost@x.com")
    outcome = refresh_member(unknown)
    assert not outcome.ok and "not a loyalty member" in outcome.message
    assert Connection.objects.get(vendor="annex_cloud").status == Connection.Status.ACTIVE


def upload(admin_http, client, text: str):
    file = io.BytesIO(text.encode())
    file.name = "members.csv"
    return admin_http.post(reverse("admin:members_member_import"), {"client": client.pk, "file": file})


def test_csv_import_keeps_good_rows_and_reports_bad_ones_by_line(admin_http, client_a):
    response = upload(
        admin_http,
        client_a,
        "email,phone,first_name,opted_in,points\n"
        "ann@example.com,(770) 765-1750,Ann,yes,10\n"
        "not-an-email,,Bad,,\n"
        "bo@example.com,12,Bo,,\n"
        "cy@example.com,+44 20 7946 0958,Cy,no,abc\n"
        'dee@example.com,4045550199,"Dee, Jr.",1,5\n',
    )
    html = response.content.decode()
    assert "2 created, 0 updated, 3 failed." in html
    assert "Line 3: Enter a valid email address." in html
    assert "Line 4:" in html and "not a valid number" in html
    assert "Line 5: points &#x27;abc&#x27; is not a whole number" in html
    assert dict(Member.objects.values_list("email", "phone")) == {
        "ann@example.com": "+17707651750",
        "dee@example.com": "+14045550199",
    }
    again = upload(admin_http, client_a, "email,first_name\nann@example.com,Annie\n")
    assert "0 created, 1 updated, 0 failed." in again.content.decode()


def test_csv_import_rejects_unknown_columns_and_changes_nothing(admin_http, client_a):
    response = upload(admin_http, client_a, "mail,telephone\nx@y.z,1\n")
    assert "needs a header row" in response.content.decode()
    assert not Member.objects.exists()
