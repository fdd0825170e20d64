"""Work that survives killed workers, outages and concurrency: interrupted runs are closed, a stored callback is
answered 2xx when the broker is down, two processors never apply an event twice, job arguments are honoured."""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from integrations import connections, inbound
from integrations.job_runs import reap_interrupted_runs, run_job, runs_interrupted
from integrations.models import JobRun, WebhookEvent
from integrations.tasks import close_runs_of_the_previous_worker
from portal.celery import app as celery_app
from tests.factories import ConnectionFactory, WebhookEventFactory

RUNNING, INTERRUPTED = JobRun.Outcome.RUNNING, JobRun.Outcome.INTERRUPTED


def test_a_run_past_the_time_limit_is_closed_as_interrupted_by_the_next_run(db, settings):
    stale = JobRun.objects.create(job="members.dispatch_loyalty_messages", worker="w1")
    JobRun.objects.filter(pk=stale.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    )
    fresh = JobRun.objects.create(job="members.dispatch_loyalty_messages", worker="w2")
    run_job("integrations.prune_old_records", dict)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.outcome == INTERRUPTED and stale.finished_at and "Interrupted" in stale.error
    assert fresh.outcome == RUNNING  # still within its time limit: it may be running


def test_a_restarted_worker_closes_the_runs_it_left_open(db):
    mine = JobRun.objects.create(job="members.dispatch_loyalty_messages", worker="celery@host-1")
    other = JobRun.objects.create(job="members.dispatch_loyalty_messages", worker="celery@host-2")
    close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname="celery@host-1"))
    assert JobRun.objects.get(pk=mine.pk).outcome == INTERRUPTED
    assert JobRun.objects.get(pk=other.pk).outcome == RUNNING
    assert reap_interrupted_runs() == 0


@pytest.fixture
def broker_down(monkeypatch):
    """Point the Celery app at a port where no broker listens, as if Redis were stopped. (Celery reads
    CELERY_BROKER_URL from the environment before its own configuration.)"""
    timeout = celery_app.conf.broker_connection_timeout
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:9/0")
    celery_app.conf.broker_connection_timeout = 0.5
    forget_broker_connections()
    yield
    monkeypatch.undo()
    celery_app.conf.broker_connection_timeout = timeout
    forget_broker_connections()


def forget_broker_connections() -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def vibes_callback(event_id: str) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "callback_type": "subscription_added",
            "event_date": "2026-01-01T00:00:00Z",
            "subscription": {"person": {"id": "P1"}, "subscription_list": {"id": "L1"}},
        }
    )


@pytest.mark.django_db(transaction=True)
def test_a_stored_callback_is_answered_2xx_when_the_broker_is_down_and_the_sweep_applies_it(client, broker_down):
    vibes = ConnectionFactory(vendor="vibes", secrets={}, settings={"company_key": "acme"})
    url = reverse("vibes-callback", args=[vibes.inbound_token])
    response = client.post(url, vibes_callback("E1"), content_type="application/json")
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.RECEIVED
    assert inbound.process_received(client_id=vibes.client_id)["processed"] == 1
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED


@pytest.mark.django_db(transaction=True)
def test_the_callback_sweep_honours_its_client(client_a, client_b):
    for client in (client_a, client_b):
        vibes = ConnectionFactory(client=client, vendor="vibes", secrets={}, settings={"company_key": "acme"})
        WebhookEventFactory(connection=vibes)
    assert inbound.process_received(client_id=client_a.pk)["processed"] == 1
    statuses = dict(WebhookEvent.objects.values_list("connection__client__slug", "status"))
    assert statuses == {"alpha": WebhookEvent.Status.PROCESSED, "beta": WebhookEvent.Status.RECEIVED}


@pytest.mark.django_db(transaction=True)
def test_two_processors_apply_each_event_once_and_count_only_their_own(monkeypatch):
    """On PostgreSQL the event rows are locked (SKIP LOCKED); on SQLite each claim is an IMMEDIATE transaction, so
    the two processors take turns. Either way no event is applied twice, and each counts only what it applied."""
    vibes = ConnectionFactory(vendor="vibes", secrets={}, settings={"company_key": "acme"})
    for n in range(200):
        WebhookEventFactory(connection=vibes, event_id=f"E{n}", person_id=f"P{n}")
    applied_by = record_applications(monkeypatch, inbound.handler_for("vibes"))
    counts: dict[str, dict[str, int]] = {}
    start = threading.Barrier(2)

    def processor() -> None:
        try:
            start.wait()
            counts[threading.current_thread().name] = inbound.process_received(vibes.pk, limit=20)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=processor, name=f"processor-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    applied = Counter(event_id for event_ids in applied_by.values() for event_id in event_ids)
    assert applied == Counter({f"E{n}": 1 for n in range(200)})  # the handler's own record: each event once
    assert {name: count["processed"] for name, count in counts.items()} == {
        name: len(applied_by.get(name, [])) for name in counts
    }
    assert sum(count["failed"] for count in counts.values()) == 0
    assert WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED).count() == 200


def record_applications(monkeypatch, handler: inbound.InboundHandler) -> dict[str, list[str]]:
    """Event ids the handler applied, by the name of the thread that applied each: a record kept beside the
    processors' own counts."""
    applied_by: dict[str, list[str]] = defaultdict(list)
    apply = handler.apply

    def recording_apply(event: WebhookEvent) -> tuple[str, str]:
        applied_by[threading.current_thread().name].append(event.event_id)
        return apply(event)

    monkeypatch.setattr(handler, "apply", recording_apply)
    return applied_by


def test_site_admins_are_emailed_once_an_hour_when_a_connection_turns_failing(site_admin, connection_a, mailoutbox):
    connections.mark_failing(connection_a, "Attentive: Unauthorized (HTTP 401) — check the API key")
    connections.mark_active(connection_a)
    connections.mark_failing(connection_a, "again")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [site_admin.email] and "is failing" in mailoutbox[0].subject
    assert "Unauthorized" in mailoutbox[0].body


def test_a_failed_job_run_is_emailed(site_admin, db, mailoutbox):
    def broken() -> dict:
        raise RuntimeError("database hiccup")

    with pytest.raises(RuntimeError):
        run_job("integrations.prune_old_records", broken)
    assert len(mailoutbox) == 1 and "prune_old_records failed" in mailoutbox[0].subject


def test_a_redelivered_task_closes_its_killed_earlier_run_and_its_leases_are_released(db):
    """A killed pool child's task is redelivered under the same task id: its earlier run, still `running`, is closed
    as interrupted when the new one starts, and the task id goes out on runs_interrupted (vendors release its
    leases). Runs without a task id (in-process) are closed without naming one."""
    released: list[list[str]] = []

    def record(sender, task_ids, **kwargs) -> None:
        released.append(task_ids)

    runs_interrupted.connect(record)
    try:
        killed = JobRun.objects.create(job="sessionm.scan_offers", task_id="task-1", worker="celery@host-1")
        in_process = JobRun.objects.create(job="sessionm.scan_offers", worker="celery@host-2")
        other = JobRun.objects.create(job="sessionm.scan_offers", task_id="task-2", worker="celery@host-1")
        again = run_job("sessionm.scan_offers", dict, task_id="task-1", worker="celery@host-1")
        assert JobRun.objects.get(pk=killed.pk).outcome == INTERRUPTED
        assert JobRun.objects.get(pk=other.pk).outcome == RUNNING and again.outcome == JobRun.Outcome.SUCCEEDED
        close_runs_of_the_previous_worker(sender=SimpleNamespace(hostname="celery@host-2"))
        assert JobRun.objects.get(pk=in_process.pk).outcome == INTERRUPTED
        assert released == [["task-1"]]
    finally:
        runs_interrupted.disconnect(record)
