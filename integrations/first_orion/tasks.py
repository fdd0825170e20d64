"""First Orion's Celery tasks (queue `bulk`, routed by "first_orion.*"): thin wrappers around its flows. Both are
safe to repeat: a push has one runner at a time and never resends a batch that left."""

from __future__ import annotations

from celery import Task, shared_task

from integrations.first_orion import flows
from integrations.job_runs import Counts
from integrations.models import Client
from integrations.task_base import PortalTask, run_as_job


@shared_task(bind=True, base=PortalTask, name="first_orion.run_push")
def run_push(self: Task, push_id: int) -> Counts:
    """Send a push's pending batches, recorded as a job run of its client (its progress shows there too)."""
    client_id = Client.objects.filter(first_orion_pushes__pk=push_id).values_list("pk", flat=True).first()
    return run_as_job(self, lambda: flows.run_push(push_id), client_id)


@shared_task(bind=True, base=PortalTask, name="first_orion.resume_pushes")
def resume_pushes(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, flows.resume_pushes, client_id)
