"""SessionM's Celery tasks: thin wrappers of its use cases (offers, forget), the scheduled ones inside a recorded
JobRun. Safe to repeat."""

from __future__ import annotations

from celery import Task, shared_task

from integrations.job_runs import Counts
from integrations.sessionm import forget, offers
from integrations.task_base import PortalTask, run_as_job


@shared_task(bind=True, base=PortalTask, name="sessionm.scan_offers")
def scan_offers(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, lambda: offers.scan_offers(client_id), client_id)


@shared_task(bind=True, base=PortalTask, name="sessionm.forget_profiles")
def forget_profiles(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, lambda: forget.forget_profiles(client_id), client_id)
