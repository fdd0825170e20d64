"""What every Celery task of the portal builds on: `PortalTask`'s defaults (acknowledged late, time limits, retries
when a vendor is unavailable or throttling) and `run_as_job`, which runs a task's work as a recorded JobRun. Kept out
of the tasks modules so that one tasks module never imports another."""

from __future__ import annotations

from typing import Any

from celery import Task

from integrations.http import RateLimited, Unavailable
from integrations.job_catalog import job_label
from integrations.job_runs import Counts, run_job
from integrations.models import Client
from members.changes import changed_by


class PortalTask(Task):
    """Defaults for every portal task: acknowledged after the work (a killed worker's task is redelivered, which
    is why tasks must be idempotent), time limits below the broker's visibility timeout, and retries with
    exponential backoff and jitter when a vendor is unavailable or throttling."""

    acks_late = True
    reject_on_worker_lost = True
    time_limit = 600
    soft_time_limit = 540
    autoretry_for = (Unavailable, RateLimited)
    retry_backoff = 30
    retry_backoff_max = 900
    retry_jitter = True
    max_retries = 5


def _client(client_id: int | None) -> Client | None:
    return Client.objects.get(pk=client_id) if client_id else None


def run_as_job(task: Task, work: Any, client_id: int | None = None) -> Counts:
    request, client = task.request, _client(client_id)
    with changed_by(f"the job “{job_label(task.name)}”"):  # members it changes say so on their timeline
        run = run_job(task.name, work, client=client, task_id=request.id or "", worker=request.hostname or "")
    return run.counts
