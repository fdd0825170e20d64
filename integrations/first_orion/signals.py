"""First Orion's signal receivers, connected when the app is ready (integrations/first_orion/apps.py)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from integrations.first_orion.flows import release_pushes_of
from integrations.job_runs import runs_interrupted


@receiver(runs_interrupted)
def release_pushes_of_interrupted_runs(sender: Any, task_ids: list[str], **kwargs: Any) -> None:
    release_pushes_of(task_ids)
