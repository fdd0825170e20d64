"""Bazaarvoice's Celery tasks: thin, recorded as job runs, safe to repeat (each review is awarded once by key)."""

from __future__ import annotations

from celery import Task, shared_task

from integrations.bazaarvoice import flows
from integrations.job_runs import Counts
from integrations.task_base import PortalTask, run_as_job


@shared_task(bind=True, base=PortalTask, name="bazaarvoice.pull_reviews")
def pull_reviews(self: Task, client_id: int | None = None) -> Counts:
    """The hourly pull (and "Pull now"): every usable Bazaarvoice connection, or one client's."""
    return run_as_job(self, lambda: flows.pull_all(client_id), client_id)
