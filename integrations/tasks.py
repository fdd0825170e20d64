"""The shared Celery tasks (callbacks, heartbeats, rollups, pruning) and the worker's start and stop hooks; each
vendor's own tasks are in its package's tasks.py, all built on integrations/task_base.py. Thin wrappers that run a
flow, the scheduled ones inside a recorded JobRun. Every task is safe to repeat. Flows queue tasks by name
(integrations/queue.py), never by importing a tasks module."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_shutdown, worker_ready

from integrations import inbound, liveness, retention, rollups
from integrations.job_runs import Counts, reap_interrupted_runs
from integrations.task_base import PortalTask, run_as_job


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
