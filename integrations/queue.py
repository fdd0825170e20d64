"""How flows queue work: by task name, after the current transaction commits.

Flows never import the task modules (tasks are entry points that import flows); they name the task here. The task
is looked up in the Celery app's registry, so eager mode (tests) and routing (settings) apply as for any task.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from celery import Task
from django.db import transaction

from portal.celery import app


@cache
def _load_task_modules() -> None:
    # Autodiscovery imports every app's tasks module; a web process never imports them itself.
    app.loader.import_default_modules()


def task_names() -> set[str]:
    """Every task the Celery app knows, once every app's tasks module is imported."""
    _load_task_modules()
    return set(app.tasks)


def task_named(name: str) -> Task:
    _load_task_modules()
    return app.tasks[name]


def enqueue(name: str, *args: Any, countdown: float = 0) -> None:
    """Queue the task `name` with `args` once the surrounding transaction (if any) has committed, `countdown`
    seconds later (0: at once, as celery reads it)."""
    task = task_named(name)
    transaction.on_commit(lambda: task.apply_async(args, countdown=countdown))
