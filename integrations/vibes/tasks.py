"""Vibes' Celery task (queue `sync`): the scheduled matcher, a thin wrapper around its flow. Its name keeps the
"integrations." prefix it had in integrations/tasks.py: the schedule row in the database names it."""

from __future__ import annotations

from celery import Task, shared_task

from integrations.job_runs import Counts
from integrations.task_base import PortalTask, run_as_job
from integrations.vibes import flows as vibes


@shared_task(bind=True, base=PortalTask, name="integrations.match_vibes_persons")
def match_vibes_persons(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, lambda: vibes.match_unmatched(client_id), client_id)
