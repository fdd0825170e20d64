"""Uncertain First Orion batches e-mail the site admins (issue 21, finding 3): a batch whose answer was lost, or that a
killed worker left `sending`, may have been pushed and is never resent automatically, so it waits for a person to
check with First Orion. The alert says which push and what to do; alerts are throttled like every other."""

from __future__ import annotations

import pytest
from django.utils import timezone

from integrations.first_orion import flows
from integrations.first_orion.models import Push, PushBatch
from members.models import Member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fo(fo_simulator, fo_connection):
    """Client A's active First Orion connection on the simulator (batches of 2), the simulator reset."""
    return fo_simulator


def members(client, count: int) -> None:
    for n in range(count):
        Member.objects.create(client=client, phone=f"+1404555{n:04d}", opted_in=True, first_name=f"Ann{n}")


def uncertain_alerts(mailoutbox) -> list:
    return [mail for mail in mailoutbox if "First Orion" in mail.subject and "uncertain" in mail.subject]


def test_a_lost_answer_alerts_the_site_admins_once(fo, content, client_a, site_admin, mailoutbox):
    members(client_a, 6)
    push = flows.create_push(content, members=Member.objects.all())
    fo.fail, fo.fail_times = "lose", 2  # the first two batches' answers are lost

    flows.run_push(push.pk)

    statuses = list(PushBatch.objects.filter(push=push).order_by("index").values_list("status", flat=True))
    assert statuses == ["uncertain", "uncertain", "sent"]
    [alert] = uncertain_alerts(mailoutbox)  # one e-mail, not one per batch: alerts are throttled
    assert alert.to == [site_admin.email]
    assert str(push.pk) in alert.body and client_a.name in alert.body
    assert "customTrackingId" in alert.body and "Send uncertain batches again" in alert.body


def test_a_batch_a_killed_worker_left_sending_alerts_when_the_push_resumes(
    fo, content, client_a, site_admin, mailoutbox
):
    members(client_a, 4)
    push = flows.create_push(content, members=Member.objects.all())
    assert flows.claim(push) and flows.build_batches(push, 2)
    flows.release(push)
    first = PushBatch.objects.filter(push=push).order_by("index").first()
    # As a worker killed during the first batch's call leaves it.
    PushBatch.objects.filter(pk=first.pk).update(status=PushBatch.Status.SENDING, attempted_at=timezone.now())
    Push.objects.filter(pk=push.pk).update(status=Push.Status.SENDING)

    flows.run_push(push.pk)

    assert PushBatch.objects.get(pk=first.pk).status == PushBatch.Status.UNCERTAIN
    [alert] = uncertain_alerts(mailoutbox)
    assert "1 First Orion batch is uncertain" in alert.subject and str(push.pk) in alert.body


def test_a_push_with_no_uncertain_batch_alerts_nobody(fo, content, client_a, site_admin, mailoutbox):
    members(client_a, 4)
    push = flows.create_push(content, members=Member.objects.all())

    flows.run_push(push.pk)

    assert Push.objects.get(pk=push.pk).status == Push.Status.SENT
    assert uncertain_alerts(mailoutbox) == []
