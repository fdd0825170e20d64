"""A real worker killed (SIGKILL) in the middle of the message job: after a restart every message is sent or shown
as uncertain, none is lost and no member gets an SMS twice. Needs PostgreSQL + Redis (CI's second pass)."""

from __future__ import annotations

import signal
import time

import pytest
from django.conf import settings

from integrations.attentive.models import SignUpSource
from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
from integrations.models import Connection, JobRun
from members.models import ChannelSubscription, OutboundMessage
from members.tasks import dispatch_loyalty_messages
from tests.e2e.test_worker_beat import wait_for
from tests.factories import ClientFactory, ConnectionFactory, LoyaltyEventFactory, MemberFactory, MessageTemplateFactory

pytestmark = pytest.mark.e2e
MESSAGES = 120


@pytest.fixture
def pending_messages(live_server, attentive_sandbox):

    client = ClientFactory()
    SignUpSource.objects.create(client=client, source_id="132109", is_default=True)
    connection = ConnectionFactory(
        client=client,
        environment=Connection.Environment.SANDBOX,
        secrets={"api_key": API_KEY, "legacy_token": LEGACY_TOKEN},
    )
    template = MessageTemplateFactory(client=client, connection=connection, text="Hi {first_name}!")
    for n in range(MESSAGES):
        member = MemberFactory(client=client, phone=f"+1404555{2000 + n:04d}")
        ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
        LoyaltyEventFactory(member=member, event_type=template.event_type)
    attentive_sandbox.latency_ms = 100  # slow enough to kill the worker mid-run
    return live_server


def test_a_worker_killed_mid_run_loses_nothing_and_sends_nothing_twice(
    celery_processes, pending_messages, attentive_sandbox
):
    celery_processes.env.update(
        SANDBOX_BASE_URL=f"{pending_messages.url}/sandbox",
        MESSAGE_SEND_CONCURRENCY="2",
        MESSAGE_RUN_SECONDS="20",
        MESSAGE_ATTEMPT_LEASE_SECONDS="5",
    )
    queues = ",".join(settings.PORTAL_QUEUES)
    worker = ["worker", "-Q", queues, "-c", "1", "--without-gossip", "--without-mingle", "-n", "drill@%h"]
    celery_processes.start("worker", *worker)

    dispatch_loyalty_messages.delay()
    assert wait_for(lambda: len(attentive_sandbox.messages) >= 20, 60), celery_processes.log("worker")
    celery_processes.procs["worker"].send_signal(signal.SIGKILL)
    celery_processes.procs["worker"].wait()
    killed_at = len(attentive_sandbox.messages)
    assert killed_at < MESSAGES, "the run finished before the kill: make the simulator slower"

    attentive_sandbox.latency_ms = 0
    celery_processes.start("worker-2", *worker)
    time.sleep(20 + 12)  # the killed run's claims expire with its time budget; its attempt lease has too

    def settled() -> bool:
        """Beat's part, every few seconds: queue the job again until nothing waits."""
        if OutboundMessage.objects.filter(status__in=["pending", "claimed", "attempting"]).exists():
            dispatch_loyalty_messages.delay()
            time.sleep(3)
            return False
        return True

    assert wait_for(settled, 180), celery_processes.log("worker-2")
    statuses = list(OutboundMessage.objects.values_list("status", flat=True))
    sent_to = [m["to"] for m in attentive_sandbox.messages]
    assert len(sent_to) == len(set(sent_to)), "a member got the SMS twice"
    assert statuses.count("sent") + statuses.count("uncertain") == MESSAGES  # nothing lost
    assert statuses.count("uncertain") <= 2  # at most the messages in flight when the worker died
    assert set(sent_to) >= set(OutboundMessage.objects.filter(status="sent").values_list("to", flat=True))
    assert not JobRun.objects.filter(outcome=JobRun.Outcome.RUNNING).exists()  # the killed run was closed
