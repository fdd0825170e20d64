"""The shared Celery tasks (callbacks, heartbeats, rollups, pruning) and the base every task builds on; each vendor's
own tasks are in its package's tasks.py. Thin wrappers that run a flow, the scheduled ones inside a recorded JobRun.
Every task is safe to repeat. Flows queue tasks by name (integrations/queue.py), never by importing a tasks module."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_shutdown, worker_ready

from integrations import inbound, liveness, retention, rollups
from integrations.http import RateLimited, Unavailable
from integrations.jobs import Counts, reap_interrupted_runs, run_job
from integrations.models import Client


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
    request = task.request
    run = run_job(task.name, work, client=_client(client_id), task_id=request.id or "", worker=request.hostname or "")
    return run.counts


@worker_process_shutdown.connect
def write_the_last_counts(**kwargs: Any) -> None:
    """A pool child that stops writes the rollup counts it holds (a child's exit skips atexit)."""
    rollups.flush()


@worker_ready.connect
def close_runs_of_the_previous_worker(sender: Any, **kwargs: Any) -> None:
    """A worker that starts has no runs in progress: whatever its earlier life left `running` was interrupted."""
    reap_interrupted_runs(worker=sender.hostname)


@shared_task(bind=True, base=PortalTask, name="integrations.prune_old_records")
def prune_old_records(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, retention.prune_old_records, client_id)


@shared_task(base=PortalTask, name="integrations.process_received_callbacks")
def process_received_callbacks(connection_id: int) -> dict[str, int]:
    """Apply a connection's stored callbacks that wait; safe to repeat (processed events are left alone)."""
    return inbound.process_received(connection_id)


@shared_task(bind=True, base=PortalTask, name="integrations.sweep_received_callbacks")
def sweep_received_callbacks(self: Task, client_id: int | None = None) -> Counts:
    """The safety net: callbacks whose processing task was lost are applied within a minute."""
    return run_as_job(self, lambda: inbound.process_received(client_id=client_id), client_id)


@shared_task(base=PortalTask, name="integrations.send_worker_heartbeats")
def send_worker_heartbeats() -> int:
    """Every minute (not a recorded job: a run row a minute would say nothing): a heartbeat on every queue."""
    return liveness.send_heartbeats()


@shared_task(base=PortalTask, name="integrations.roll_up_callbacks")
def roll_up_callbacks() -> int:
    """Every minute (not a recorded job, like the heartbeats): counts the callbacks stored since the last run into
    the hourly rollups the dashboard and /metrics read."""
    return rollups.roll_up_callbacks()


@shared_task(bind=True, base=PortalTask, name=liveness.HEARTBEAT_TASK)
def worker_heartbeat(self: Task, queue: str) -> None:
    liveness.record_heartbeat(queue, self.request.hostname or "")
