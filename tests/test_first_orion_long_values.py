"""Personalised values over 20 characters (seed 002: they may not display on every handset) are never sent as they
are without being asked: each push chooses — leave those members out (the default, counted with the reason), shorten
the values at 20, or send them as they are (site admins only) — on the admin's confirmation page and in the API.
What each choice sends is read from the First Orion simulator's record."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from integrations.first_orion import destinations, flows
from integrations.first_orion.models import ProgramContent, Push
from members.models import Member, Segment
from members.segments import add_members
from tests.first_orion_fixtures import connect_first_orion

LONG_NAME = "Maximiliana-Josephine"  # "Hi Maximiliana-Josephine": 24 characters
PUSHES = "/api/first-orion/pushes/"


@pytest.fixture
def fo(fo_simulator, client_a):
    """Client A's active First Orion connection on the simulator, the simulator reset."""
    connect_first_orion(client_a)
    return fo_simulator


@pytest.fixture
def callers(client_a) -> dict[str, Member]:
    return {
        "short": Member.objects.create(client=client_a, phone="+14045550001", first_name="Ann", opted_in=True),
        "long": Member.objects.create(client=client_a, phone="+14045550002", first_name=LONG_NAME, opted_in=True),
    }


def sent(state) -> dict[str, dict[str, str]]:
    """The simulator's record: each number pushed and the personalization it received."""
    with state.lock:
        return {item["bNumber"]: item.get("personalization", {}) for item in state.destinations}


def run(push: Push) -> Push:
    flows.run_push(push.pk)
    push.refresh_from_db()
    return push


def test_by_default_members_with_a_long_value_are_left_out_with_the_reason(fo, content, callers):
    push = run(flows.create_push(content, members=Member.objects.all()))
    assert push.status == "sent" and push.long_values == "leave_out"
    assert sent(fo) == {"+14045550001": {"MY_VAR": "Hi Ann"}}
    assert push.skipped == {destinations.SKIP_LONG_VALUE: 1}
    assert fo.long_values == 0


def test_shortened_values_are_cut_at_20_characters(fo, content, callers):
    push = run(flows.create_push(content, members=Member.objects.all(), long_values="shorten"))
    assert sent(fo) == {"+14045550001": {"MY_VAR": "Hi Ann"}, "+14045550002": {"MY_VAR": "Hi Maximiliana-Josep"}}
    assert (push.shortened, push.skipped) == (1, {})
    assert fo.long_values == 0


def test_a_site_admin_may_send_long_values_as_they_are(fo, content, callers):
    push = run(flows.create_push(content, members=Member.objects.all(), long_values="send_as_is", site_admin=True))
    assert sent(fo)["+14045550002"] == {"MY_VAR": f"Hi {LONG_NAME}"}
    assert fo.long_values == 1 and push.skipped == {}


def test_only_a_site_admin_may_send_long_values_as_they_are(fo, content, callers):
    with pytest.raises(flows.LongValuesNotAllowed, match="site admin"):
        flows.create_push(content, members=Member.objects.all(), long_values="send_as_is")
    assert not Push.objects.exists()


def test_a_numbers_push_whose_static_value_is_long_is_refused_by_default_and_shortened_when_chosen(fo, content):
    content.personalization = {"MY_VAR": "Your order is ready for pickup"}
    content.save()
    refused = run(flows.create_push(content, numbers=["+14045550009"]))
    assert refused.status == "failed" and "over 20 characters" in refused.error and sent(fo) == {}
    run(flows.create_push(content, numbers=["+14045550009"], long_values="shorten"))
    assert sent(fo) == {"+14045550009": {"MY_VAR": "Your order is ready "}}


# --- The admin's confirmation page -------------------------------------------------------------------------------


def segment_of(client_a) -> Segment:
    segment = Segment.objects.create(client=client_a, name="Callers")
    add_members(segment, Member.objects.all())
    return segment


def post_action(http, segment: Segment, content: ProgramContent, step: str, long_values: str | None = None):
    data = {
        "action": "push_segment_content",
        "_selected_action": [segment.pk],
        "program_content": content.pk,
        "push_step": step,
    }
    if long_values is not None:
        data["long_values"] = long_values
    return http.post(reverse("admin:members_segment_changelist"), data, follow=True)


def test_the_confirmation_page_offers_the_choice_and_shows_what_it_does(alice_http, fo, content, callers, client_a):
    segment = segment_of(client_a)
    page = post_action(alice_http, segment, content, "preview").content.decode()
    assert "Hi Maximiliana-Josephine" in page and "those members are left out" in page
    assert 'value="leave_out"' in page and 'value="shorten"' in page
    assert 'value="send_as_is"' not in page  # a client user is not offered it
    page = post_action(alice_http, segment, content, "preview", "shorten").content.decode()
    assert "<strong>2</strong> destinations" in page and "1 destination gets their values shortened" in page
    post_action(alice_http, segment, content, "confirm", "shorten")
    push = run(Push.objects.get())
    assert push.long_values == "shorten" and push.requested_by == "alice"
    assert sent(fo)["+14045550002"] == {"MY_VAR": "Hi Maximiliana-Josep"}


def test_a_client_user_cannot_send_long_values_as_they_are_from_the_admin(alice_http, fo, content, callers, client_a):
    page = post_action(alice_http, segment_of(client_a), content, "confirm", "send_as_is").content.decode()
    assert "Select a valid choice" in page
    assert not Push.objects.exists()


def test_a_site_admin_sends_long_values_as_they_are_from_the_admin(admin_http, fo, content, callers, client_a):
    segment = segment_of(client_a)
    assert 'value="send_as_is"' in post_action(admin_http, segment, content, "preview").content.decode()
    post_action(admin_http, segment, content, "confirm", "send_as_is")
    run(Push.objects.get())
    assert sent(fo)["+14045550002"] == {"MY_VAR": f"Hi {LONG_NAME}"} and fo.long_values == 1


def test_the_admin_default_leaves_them_out(admin_http, fo, content, callers, client_a):
    post_action(admin_http, segment_of(client_a), content, "confirm")
    push = run(Push.objects.get())
    assert list(sent(fo)) == ["+14045550001"] and push.skipped == {destinations.SKIP_LONG_VALUE: 1}


# --- The client API ----------------------------------------------------------------------------------------------


def test_the_api_pushes_with_each_choice_a_client_token_may_make(api_client_for, fo, content, callers, client_a):
    api = api_client_for(client_a)
    members = [m.pk for m in callers.values()]
    default = api.post(PUSHES, {"program_content": content.pk, "members": members}, format="json")
    assert default.status_code == 202, default.content
    assert default.json()["long_values"] == "leave_out" and default.json()["status"] == "planning"
    run(Push.objects.get(pk=default.json()["id"]))
    assert api.get(default["Location"]).json()["skipped"] == {destinations.SKIP_LONG_VALUE: 1}
    assert list(sent(fo)) == ["+14045550001"]
    short = api.post(PUSHES, {"program_content": content.pk, "members": members, "long_values": "shorten"}, "json")
    assert short.status_code == 202
    run(Push.objects.get(pk=short.json()["id"]))
    assert api.get(short["Location"]).json()["shortened"] == 1
    assert sent(fo)["+14045550002"] == {"MY_VAR": "Hi Maximiliana-Josep"} and fo.long_values == 0


def test_the_api_refuses_send_as_is_to_a_client_token_and_allows_it_to_a_site_admin(
    api_client_for, fo, content, callers, client_a, site_admin
):
    body = {"program_content": content.pk, "members": [m.pk for m in callers.values()], "long_values": "send_as_is"}
    refused = api_client_for(client_a).post(PUSHES, body, format="json")
    assert refused.status_code == 403 and "site admin" in refused.json()["message"]
    assert not Push.objects.exists()
    admin = APIClient()
    admin.force_login(site_admin)
    accepted = admin.post(PUSHES, body, format="json")
    assert accepted.status_code == 202, accepted.content
    run(Push.objects.get())
    assert sent(fo)["+14045550002"] == {"MY_VAR": f"Hi {LONG_NAME}"}


def test_the_api_refuses_an_unknown_choice(api_client_for, fo, content, callers, client_a):
    body = {"program_content": content.pk, "numbers": ["+14045550001"], "long_values": "truncate"}
    answer = api_client_for(client_a).post(PUSHES, body, format="json")
    assert answer.status_code == 400 and "long_values" in answer.json()
