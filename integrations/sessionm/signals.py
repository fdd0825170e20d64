"""SessionM's signal receivers, connected when the app is ready (integrations/sessionm/apps.py): each hands the
event to the use case it belongs to."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver

from integrations.job_runs import runs_interrupted
from integrations.models import Connection
from integrations.sessionm.forget import request_forget
from integrations.sessionm.offers import release_scans_of
from integrations.sessionm.welcome import note_first_active
from members.models import Member


@receiver(post_save, sender=Connection, dispatch_uid="sessionm.connection_saved")
def connection_saved(sender: type[Connection], instance: Connection, **kwargs: Any) -> None:
    note_first_active(instance)


@receiver(pre_delete, sender=Member, dispatch_uid="sessionm.member_deleted")
def member_deleted(sender: type[Member], instance: Member, **kwargs: Any) -> None:
    request_forget(instance)


@receiver(runs_interrupted)
def release_scans_of_interrupted_runs(sender: Any, task_ids: list[str], **kwargs: Any) -> None:
    release_scans_of(task_ids)
