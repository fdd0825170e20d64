"""Recorded job runs: every job execution is a JobRun row with its outcome, counts and progress; runs that cannot
still be going are closed as interrupted, and the leases long work takes name the run that holds them. The schedules
that start the jobs are integrations/schedules.py's."""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db import connections as db_connections
from django.db.models import Model, Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from integrations import rollups
from integrations.alerts import alert
from integrations.models import Client, JobRun

Counts = dict[str, int]

# The run whose work is executing in this context, so long work can show its progress (report_progress).
_current_run: ContextVar[JobRun | None] = ContextVar("current_job_run", default=None)

# Sent (sender=JobRun, task_ids=[...]) once runs are closed as interrupted: their work is not going on any more, so
# each vendor's flows release the leases those runs held (a First Orion push, a SessionM scan, a Bazaarvoice pull)
# and the work resumes at once instead of after the lease runs out. Only non-empty task ids are sent.
runs_interrupted = Signal()


def release_leases_of(model: type[Model], task_ids: list[str], until_field: str) -> int:
    """Free the leases (rows of `model` with a `holder` and an `until_field`) that the interrupted runs held."""
    held = model._default_manager.filter(holder__in=[t for t in task_ids if t], **{f"{until_field}__isnull": False})
    return held.update(**{until_field: None, "holder": ""})


INTERRUPTED_ERROR = (
    "Interrupted: the run stopped without finishing (worker killed, time limit or database outage). "
    "Its work is safe to repeat; the next scheduled run picks it up."
)


def run_job(
    job: str, work: Callable[[], Counts], *, client: Client | None = None, task_id: str = "", worker: str = ""
) -> JobRun:
    """Run `work`, recording a JobRun around it. The run row is committed before the work starts, so a run that
    is killed stays visible with its start time until the reaper closes it as interrupted; the exception is
    re-raised for Celery to retry.

    A run still `running` under the same task id is this task's earlier execution, killed (a pool child's task is
    redelivered at once under its id): it is closed as interrupted, and the leases it held are released."""
    reap_interrupted_runs()
    close_earlier_executions(task_id)
    run = JobRun.objects.create(job=job, client=client, task_id=task_id or "", worker=worker)
    token = _current_run.set(run)
    try:
        counts = work()
    except Exception as exc:
        run.outcome = JobRun.Outcome.FAILED
        run.error = "".join(traceback.format_exception(exc))[-10_000:]
        alert(f"job-failed:{job}:{client.pk if client else ''}", f"Job {job} failed", run.error[-2000:])
        raise
    else:
        run.outcome = JobRun.Outcome.SUCCEEDED
        run.counts = counts or {}
    finally:
        _current_run.reset(token)
        run.finished_at = timezone.now()
        record_end(run)
        rollups.job_run_ended(run)
        rollups.flush()  # the run's counts are on the dashboard as it ends
    return run


def current_run() -> JobRun | None:
    """The JobRun recording the work that calls this, if any."""
    return _current_run.get()


def report_progress(counts: Counts, *, done: int | None = None, total: int | None = None) -> None:
    """Show the counts so far on the running job's JobRun (replaced by the final counts when it ends), and, for work
    of a known size, how much of it is done (the admin shows a percentage and the time left)."""
    run = _current_run.get()
    if run is not None:
        run.counts, run.done, run.total = counts, done, total
        JobRun.objects.filter(pk=run.pk).update(counts=counts, done=done, total=total)


def record_end(run: JobRun, patience: float = 60.0) -> None:
    """Save how the run ended, waiting out a database outage (the usual reason a run fails half-way) so that the run
    is closed with its real outcome instead of staying `running`; past `patience` the reaper closes it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            run.save(update_fields=["outcome", "counts", "error", "finished_at"])
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            db_connections.close_all()  # a broken connection is replaced on the next query
            time.sleep(2)


def reap_interrupted_runs(worker: str = "") -> int:
    """Close runs that cannot still be running: past the hard time limit Celery kills a task, and a worker that
    (re)starts has none of its earlier runs left. They become `interrupted`, keeping what they had recorded."""
    cutoff = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    stale = Q(started_at__lt=cutoff)
    if worker:
        stale |= Q(worker=worker)
    return close_as_interrupted(JobRun.objects.filter(stale, outcome=JobRun.Outcome.RUNNING))


def close_earlier_executions(task_id: str) -> int:
    """Close the runs left `running` by earlier executions of this task (same task id): they were killed, since
    Celery redelivers a task only once its execution is gone."""
    if not task_id:
        return 0
    return close_as_interrupted(JobRun.objects.filter(task_id=task_id, outcome=JobRun.Outcome.RUNNING))


def close_as_interrupted(runs: QuerySet[JobRun]) -> int:
    """Mark these running runs interrupted, alert, and tell the vendors' flows (runs_interrupted) to release the
    leases they held. Only the rows this call closed count: a run closed meanwhile by another reaper is left."""
    found = list(runs.values_list("pk", "job", "task_id"))
    if not found:
        return 0
    closed = JobRun.objects.filter(pk__in=[pk for pk, _, _ in found], outcome=JobRun.Outcome.RUNNING).update(
        outcome=JobRun.Outcome.INTERRUPTED, finished_at=timezone.now(), error=INTERRUPTED_ERROR
    )
    if not closed:
        return 0
    rollups.counted(rollups.JOB_RUNS, outcome=JobRun.Outcome.INTERRUPTED, count=closed)
    jobs = sorted({job for _, job, _ in found})
    alert(f"jobs-interrupted:{','.join(jobs)}", "Job runs were interrupted", f"Interrupted: {', '.join(jobs)}.")
    task_ids = sorted({task_id for _, _, task_id in found if task_id})
    if task_ids:
        runs_interrupted.send(sender=JobRun, task_ids=task_ids)
    return closed


def lease_holder() -> str:
    """Who a lease taken now belongs to: the task id of the run doing the work (a redelivered execution of a killed
    task has the same id, and takes its own lease over at once), or, outside a task (an admin's action run in the
    request), a fresh id of its own."""
    run = current_run()
    return run.task_id if run is not None and run.task_id else f"local-{uuid.uuid4().hex}"


def run_holding(holder: str) -> JobRun | None:
    """The running run whose task holds a lease under `holder`, if it is one."""
    if not holder:
        return None
    return JobRun.objects.filter(task_id=holder, outcome=JobRun.Outcome.RUNNING).order_by("-started_at").first()


def running_since(holder: str, client: Client | None) -> str:
    """ "running since 14:03 (America/New_York)" for the run holding a lease, in the client's time zone; "running"
    when the holder is not a recorded run (an admin's action in its request)."""
    run = run_holding(holder)
    if run is None:
        return "running"
    zone = client.zone if client is not None else timezone.get_current_timezone()
    started = timezone.localtime(run.started_at, zone)
    day = "" if started.date() == timezone.localtime(timezone.now(), zone).date() else f"{started:%Y-%m-%d} "
    return f"running since {day}{started:%H:%M:%S} ({getattr(zone, 'key', zone)})"
