"""Bazaarvoice's signal receivers, connected when the app is ready (integrations/bazaarvoice/apps.py)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from integrations.bazaarvoice.flows import release_pulls_of
from integrations.job_runs import runs_interrupted


@receiver(runs_interrupted)
def release_pulls_of_interrupted_runs(sender: Any, task_ids: list[str], **kwargs: Any) -> None:
    release_pulls_of(task_ids)
