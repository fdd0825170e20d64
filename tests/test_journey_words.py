"""Words the README journeys showed unfinished in the browser (issue 24's close read of var/screenshots/journey-*):
a schedule of every 1 minute, an interrupted message's state said twice, refused secrets named by their field names,
confirmation pages that repeat their title under the page's own."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.bazaarvoice.models import PullState
from integrations.first_orion.models import Push
from integrations.schedules import describe
from members.admin.messages import message_state
from members.messaging import INTERRUPTED_DETAIL
from members.models import MemberVendorState, OutboundMessage
from tests.factories import ConnectionFactory, MemberFactory


def heading_count(page: str, title: str) -> int:
    """How many headings (h1, h2) of the page say the title."""
    return len(re.findall(rf"<h[12][^>]*>\s*{re.escape(escape(title))}\s*</h[12]>", page))


@pytest.mark.parametrize(
    ("every", "period", "words"),
    [(1, "minutes", "every minute"), (1, "hours", "every hour"), (5, "minutes", "every 5 minutes")],
)
def test_a_job_every_one_minute_reads_every_minute(every, period, words):
    task = PeriodicTask(name="job", interval=IntervalSchedule(every=every, period=period))
    assert describe(task) == words


def test_a_message_interrupted_while_sending_says_uncertain_and_what_to_do_once():
    message = OutboundMessage(status=OutboundMessage.Status.UNCERTAIN, detail=INTERRUPTED_DETAIL)
    words = message_state(message)
    assert words.count("Uncertain") == 1 and words.lower().count("send anyway") == 1


def test_an_uncertain_message_without_the_jobs_words_still_says_what_to_do():
    words = message_state(OutboundMessage(status=OutboundMessage.Status.UNCERTAIN, detail="the answer was lost"))
    assert words.startswith("Uncertain: the answer was lost") and "Send anyway" in words


@pytest.mark.django_db(transaction=True)
def test_refused_secrets_are_named_as_the_form_names_them(admin_http, client_a, attentive_sandbox):
    url = reverse("admin:integrations_client_attentive", args=[client_a.pk])
    data = {"environment": "sandbox", "api_key": "wrong", "legacy_token": "wrong-too", "sign_up_sources": "132109, L"}
    response = admin_http.post(url, data, follow=True)
    [said] = [str(message) for message in response.context["messages"]]
    assert "What you entered (API key, Legacy messages token) was not kept" in said
    assert "api_key" not in said and "legacy_token" not in said
    assert response.content.decode().count("rejected the API key") == 1  # the message, not repeated under it


@pytest.mark.django_db
def test_the_attentive_confirmation_says_its_title_once(admin_http, client_a):
    members = [MemberFactory(client=client_a, phone=f"+1770765176{n}") for n in range(2)]
    data = {"action": "subscribe_at_attentive", "_selected_action": [m.pk for m in members]}
    page = admin_http.post(reverse("admin:members_member_changelist"), data).content.decode()
    assert heading_count(page, "Subscribe 2 members at Attentive?") == 1


@pytest.mark.django_db
def test_the_pull_now_confirmation_says_its_title_once(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, vendor="bazaarvoice")
    pull_url = reverse("admin:integrations_connection_bazaarvoice_pull", args=[connection.pk])
    page = admin_http.get(pull_url).content.decode()
    assert heading_count(page, f"Pull {client_a}'s Bazaarvoice reviews now?") == 1
    assert "Next run due" in page and f'href="{pull_url}"' not in page  # where it stands, no "Pull now…" on itself


@pytest.mark.django_db
def test_a_push_page_says_who_was_left_out_in_words_not_json(admin_http, client_a, content):
    push = Push.objects.create(
        client=client_a, program_content=content, source="segment", status="sent",
        skipped={"no mobile number": 1, "opted out": 3}, warnings={},
    )  # fmt: skip
    page = admin_http.get(reverse("admin:first_orion_push_change", args=[push.pk])).content.decode()
    assert "<div>3 · opted out</div><div>1 · no mobile number</div>" in page
    assert "{&quot;no mobile number&quot;" not in page and '{"no mobile number"' not in page


@pytest.mark.django_db
def test_the_bazaarvoice_pull_counts_read_in_words(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, vendor="bazaarvoice")
    PullState.objects.create(connection=connection, last_run_counts={"not_member": 1, "not_eligible": 2, "pages": 1})
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[connection.pk])).content.decode()
    assert "not a member 1" in page and "not eligible 2" in page and "pages 1" in page
    assert "not_member" not in page and "not_eligible" not in page


@pytest.mark.django_db
def test_a_members_page_names_each_vendor_as_the_vendor_calls_itself(admin_http, client_a):
    member = MemberFactory(client=client_a)
    MemberVendorState.objects.create(member=member, vendor="sessionm", status="in_sync", detail="created")
    page = admin_http.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    page = re.sub(r"\s+", " ", page).replace("> <", "><")
    assert "<p> SessionM: in sync </p>" in page and '<td class="field-vendor_label"><p>SessionM</p></td>' in page
    assert "sessionm: in sync" not in page and "<p>sessionm</p>" not in page
