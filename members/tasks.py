"""Celery tasks of the loyalty side: thin wrappers around flows, recorded as job runs."""

from __future__ import annotations

from celery import Task, shared_task

from integrations.jobs import Counts
from integrations.tasks import PortalTask, run_as_job
from members.messaging import dispatch_messages


@shared_task(bind=True, base=PortalTask, name="members.dispatch_loyalty_messages")
def dispatch_loyalty_messages(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, dispatch_messages)
