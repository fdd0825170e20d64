"""Celery tasks of the vendor side: thin wrappers that run a flow, the scheduled ones inside a recorded JobRun.
Every task is safe to repeat. Flows queue these by name (integrations/queue.py), never by importing this module."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_shutdown, worker_ready

from integrations import inbound, liveness, retention, rollups
from integrations.attentive import flows as attentive
from integrations.http import RateLimited, Unavailable
from integrations.jobs import Counts, reap_interrupted_runs, run_job
from integrations.models import Client
from integrations.vibes import flows as vibes
from members.models import Member


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


def _member(member_id: int) -> Member:
    return Member.objects.select_related("client").get(pk=member_id)


@shared_task(bind=True, base=PortalTask, name="integrations.prune_old_records")
def prune_old_records(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, retention.prune_old_records, client_id)


@shared_task(base=PortalTask, name="integrations.attentive_subscribe")
def attentive_subscribe(member_id: int) -> str:
    """Subscribe a member who opted in; the flow checks stored state and eligibility first, so a repeat is harmless."""
    return attentive.subscribe(_member(member_id)).message


@shared_task(base=PortalTask, name="integrations.attentive_unsubscribe")
def attentive_unsubscribe(member_id: int, channels: list[str] | None = None) -> str:
    """Unsubscribe a member from the channels the caller chose (attentive.SMS, attentive.EMAIL or both). Messages
    queued before the task took channels carry none: they keep the meaning they were queued with, SMS only."""
    return attentive.unsubscribe(_member(member_id), channels or (attentive.SMS,)).message


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


@shared_task(bind=True, base=PortalTask, name="integrations.match_vibes_persons")
def match_vibes_persons(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, lambda: vibes.match_unmatched(client_id), client_id)
