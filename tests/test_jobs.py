"""Recorded jobs, the portal's schedules, and the admin's 'run now'."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from integrations.job_catalog import SCHEDULES
from integrations.job_runs import run_job
from integrations.models import JobRun, VendorCall
from integrations.schedules import ensure_schedules
from integrations.tasks import prune_old_records
from portal.celery import app as celery_app


def test_run_job_records_success_with_counts(db):
    run = run_job("demo.job", lambda: {"sent": 3, "skipped": 1})
    run.refresh_from_db()
    assert (run.outcome, run.counts) == (JobRun.Outcome.SUCCEEDED, {"sent": 3, "skipped": 1})
    assert run.finished_at >= run.started_at


def test_run_job_records_failure_and_reraises(db):
    def explode():
        raise RuntimeError("vendor on fire")

    with pytest.raises(RuntimeError):
        run_job("demo.job", explode)
    run = JobRun.objects.get()
    assert run.outcome == JobRun.Outcome.FAILED
    assert "vendor on fire" in run.error and run.finished_at is not None


def test_the_portals_schedules_exist_after_migrate_and_are_not_overwritten(db):
    names = {s.name for s in SCHEDULES}
    assert set(PeriodicTask.objects.filter(name__in=names).values_list("name", flat=True)) == names
    task = PeriodicTask.objects.get(name=SCHEDULES[0].name)
    task.enabled = False
    task.save()
    assert ensure_schedules() == []
    task.refresh_from_db()
    assert task.enabled is False


def test_prune_task_deletes_old_calls_and_runs_and_records_a_run(connection_a, settings):
    settings.RECORD_RETENTION_DAYS = 30
    old = timezone.now() - timedelta(days=31)
    for _ in range(3):
        VendorCall.objects.create(connection=connection_a, method="GET", url="https://x/", created_at=old)
    recent = VendorCall.objects.create(connection=connection_a, method="GET", url="https://x/")
    JobRun.objects.create(job="members.dispatch_loyalty_messages", started_at=old)
    pruned = {"vendor_calls": 3, "job_runs": 1, "webhook_events": 0, "outbound_messages": 0, "loyalty_events": 0}
    pruned |= {
        "member_changes": 0,
        "member_actions": 0,
        "rollups": 0,
        "first_orion_pushes": 0,
    }  # no hourly rollup is past its 400 days
    assert prune_old_records.apply().get() == pruned
    assert list(VendorCall.objects.values_list("pk", flat=True)) == [recent.pk]
    assert JobRun.objects.get(job="integrations.prune_old_records").counts == pruned


def test_tasks_ack_late_within_the_visibility_timeout():
    """A task acknowledged late is redelivered if not acknowledged within the broker's visibility timeout: every
    task's hard time limit must end it first, or a slow run would be started a second time beside itself."""
    visibility_timeout = celery_app.conf.broker_transport_options["visibility_timeout"]
    celery_app.loader.import_default_modules()  # every app's tasks module, as a worker imports them
    tasks = {name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")}
    assert prune_old_records.name in tasks and len(tasks) > 10
    for name, task in tasks.items():
        assert task.acks_late and task.reject_on_worker_lost, name
        time_limit = task.time_limit or celery_app.conf.task_time_limit
        assert time_limit and time_limit < visibility_timeout, name
    assert prune_old_records.max_retries == 5


def test_run_now_queues_the_job_on_the_broker(admin_http, db):
    with celery_app.connection_for_read() as conn:
        conn.SimpleQueue("bulk").clear()  # what earlier tests left queued (a connection's first activation, ...)
    run = JobRun.objects.create(job="integrations.prune_old_records", outcome="failed")
    admin_http.post(
        reverse("admin:integrations_jobrun_changelist"), {"action": "run_now", "_selected_action": [run.pk]}
    )
    with celery_app.connection_for_read() as conn:
        message = conn.SimpleQueue("bulk").get(timeout=2)  # the queue of bulk work (settings.CELERY_TASK_ROUTES)
        assert message.headers["task"] == "integrations.prune_old_records"
        message.ack()


def test_client_users_cannot_run_jobs(alice_http, client_a):
    run = JobRun.objects.create(job="integrations.prune_old_records", client=client_a)
    response = alice_http.post(
        reverse("admin:integrations_jobrun_changelist"),
        {"action": "run_now", "_selected_action": [run.pk]},
        follow=True,
    )
    assert "Only site admins can run jobs" in response.content.decode()
