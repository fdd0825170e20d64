"""Issue 24, leftovers of the screenshot close-read: one batch numbering, words for column headers, webhook headers as
pretty as the body, and an empty read-only inline saying "None yet." rather than bare headers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.first_orion.models import Push, PushBatch
from members.models import ChannelSubscription
from tests.factories import ConnectionFactory, MemberFactory, WebhookEventFactory

pytest_plugins = ["tests.first_orion_fixtures"]


@pytest.fixture
def batch(client_a, content) -> PushBatch:
    push = Push.objects.create(client=client_a, program_content=content, source="numbers", status="sent")
    return PushBatch.objects.create(
        push=push, index=0, size=1, status="sent", request_id="req-7f3a", destinations=[{"bNumber": "+14045550001"}]
    )


@pytest.mark.django_db
def test_a_push_numbers_its_batches_from_1_as_their_titles_do(batch, admin_http):
    push_page = admin_http.get(reverse("admin:first_orion_push_change", args=[batch.push_id])).content.decode()
    assert f"Batch 1 of push {batch.push_id}" in push_page
    assert '<th class="column-batch_number">Batch' in push_page and "column-index" not in push_page
    assert '<td class="field-batch_number"> <p>1</p>' in " ".join(push_page.split())
    batch_page = admin_http.get(reverse("admin:first_orion_pushbatch_change", args=[batch.pk])).content.decode()
    assert '<div class="readonly">1</div>' in batch_page and "field-index" not in batch_page


@pytest.mark.django_db
def test_the_request_id_column_is_headed_in_words(batch, admin_http):
    page = admin_http.get(reverse("admin:first_orion_pushbatch_changelist")).content.decode()
    assert "First Orion request id" in page and "requestId" not in page


@pytest.mark.django_db
def test_a_webhook_events_headers_read_like_its_body(client_a, admin_http):
    headers = {"Content-Type": "application/json", "User-Agent": "Vibes-Callbacks/2"}
    event = WebhookEventFactory(connection=ConnectionFactory(client=client_a), headers=headers)
    page = admin_http.get(reverse("admin:integrations_webhookevent_change", args=[event.pk])).content.decode()
    one_a_line = "{\n  &quot;Content-Type&quot;: &quot;application/json&quot;,\n  &quot;User-Agent&quot;"
    assert f'<pre class="received-body">{one_a_line}' in page


@pytest.mark.django_db
def test_an_empty_inline_says_none_yet_instead_of_bare_headers(client_a, admin_http):
    member = MemberFactory(client=client_a)
    url = reverse("admin:members_member_change", args=[member.pk])
    page = admin_http.get(url).content.decode()
    subscriptions = page.split('id="subscriptions-group"', 1)[1].split("</fieldset>", 1)[0]
    assert "None yet." in subscriptions and "column-channel" not in subscriptions
    ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    subscriptions = admin_http.get(url).content.decode().split('id="subscriptions-group"', 1)[1]
    assert "None yet." not in subscriptions.split("</fieldset>", 1)[0] and "column-channel" in subscriptions
