"""Parrot's Celery task: thin, recorded as a job run by the shared machinery."""

from __future__ import annotations

from celery import Task, shared_task

from integrations.job_runs import Counts
from integrations.task_base import PortalTask, run_as_job
from tests.parrot_vendor import flows


@shared_task(bind=True, base=PortalTask, name="parrot.pull_squawks")
def pull_squawks(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, flows.pull_squawks, client_id)
