"""A real Celery worker and beat, as processes against PostgreSQL and Redis, run a job from a database schedule;
editing the schedule in the database takes effect without restarting either."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from integrations.models import JobRun

pytestmark = pytest.mark.e2e
JOB = "integrations.prune_old_records"
# What the prune job counts, each table past its retention (integrations/retention.py).
# Each table the prune job counts: the portal's own, then each vendor's (First Orion's pushes).
PRUNED_TABLES = (
    *(
        "vendor_calls",
        "job_runs",
        "webhook_events",
        "outbound_messages",
        "loyalty_events",
        "member_changes",
        "member_actions",
        "rollups",
    ),
    "first_orion_pushes",
)
QUEUES = ",".join(settings.PORTAL_QUEUES)


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def start_worker(celery_processes, name: str = "worker") -> None:
    celery_processes.start(name, "worker", "--pool=solo", "-Q", QUEUES, "--without-gossip", "--without-mingle")


def test_beat_runs_a_database_scheduled_job_and_follows_an_edit(celery_processes):
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    task = PeriodicTask.objects.create(name="e2e prune", task=JOB, interval=hourly)

    start_worker(celery_processes)
    beat_schedule = str(celery_processes.tmp_path / "beat-schedule")
    celery_processes.start("beat", "beat", "--max-interval=1", "-l", "INFO", "-s", beat_schedule)

    # Hourly: nothing may run in the first seconds.
    assert wait_for(lambda: "beat: Starting" in celery_processes.log("beat"), 30), celery_processes.log("beat")
    time.sleep(3)
    assert not JobRun.objects.filter(job=JOB).exists()

    # An admin edits the schedule: every 2 seconds. Beat picks it up on its own.
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    task.interval = every_two
    task.save()

    def two_successful_runs() -> bool:
        return JobRun.objects.filter(job=JOB, outcome=JobRun.Outcome.SUCCEEDED).count() >= 2

    assert wait_for(two_successful_runs, 45), celery_processes.log("beat") + celery_processes.log("worker")
    run = JobRun.objects.filter(job=JOB).first()
    assert run.counts == dict.fromkeys(PRUNED_TABLES, 0) and run.task_id


def test_a_second_beat_waits_as_a_standby_and_takes_over(celery_processes):
    """Two beats: the job runs once per tick, not twice; when the active beat dies the standby takes over."""
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="e2e prune", task=JOB, interval=every_two)
    celery_processes.env["BEAT_LEASE_SECONDS"] = "4"
    start_worker(celery_processes)
    for name in ("beat-1", "beat-2"):
        beat_schedule = str(celery_processes.tmp_path / f"{name}-schedule")
        celery_processes.start(name, "beat", "--max-interval=1", "-l", "INFO", "-s", beat_schedule)

    def logs() -> str:
        return celery_processes.log("beat-1") + celery_processes.log("beat-2")

    assert wait_for(lambda: JobRun.objects.filter(job=JOB).count() >= 1, 45), logs()
    started = JobRun.objects.filter(job=JOB).count()
    time.sleep(10)
    runs = JobRun.objects.filter(job=JOB).count() - started
    assert 3 <= runs <= 7, f"{runs} runs in 10 s with a 2 s schedule and two beats\n{logs()}"
    active = next(name for name in ("beat-1", "beat-2") if "is now active" in celery_processes.log(name))
    celery_processes.procs[active].kill()
    before = JobRun.objects.filter(job=JOB).count()
    assert wait_for(lambda: JobRun.objects.filter(job=JOB).count() >= before + 2, 30), logs()
