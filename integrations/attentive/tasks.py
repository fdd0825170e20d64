"""Attentive's Celery tasks (queue `sync`): thin wrappers around its flows. Their names keep the "integrations."
prefix they had in integrations/tasks.py: schedules in the database and queued messages name them."""

from __future__ import annotations

from celery import shared_task

from integrations.attentive import flows as attentive
from integrations.task_base import PortalTask
from members.models import Member


def _member(member_id: int) -> Member:
    return Member.objects.select_related("client").get(pk=member_id)


@shared_task(base=PortalTask, name="integrations.attentive_subscribe")
def attentive_subscribe(member_id: int) -> str:
    """Subscribe a member who opted in; the flow checks stored state and eligibility first, so a repeat is harmless."""
    return attentive.subscribe(_member(member_id)).message


@shared_task(base=PortalTask, name="integrations.attentive_unsubscribe")
def attentive_unsubscribe(member_id: int, channels: list[str] | None = None) -> str:
    """Unsubscribe a member from the channels the caller chose (attentive.SMS, attentive.EMAIL or both). Messages
    queued before the task took channels carry none: they keep the meaning they were queued with, SMS only."""
    return attentive.unsubscribe(_member(member_id), channels or (attentive.SMS,)).message
