"""The portal's recurring jobs by name: the shared ones and each vendor's (declared in its spec). Read by the code
that creates the schedules (integrations/schedules.py) and by whatever names a job to people (job runs, the Jobs
page)."""

from __future__ import annotations

from typing import Any

from integrations.vendor_spec import Schedule
from integrations.vendors import VENDORS, registry_changed

CORE_SCHEDULES = (
    Schedule(
        name="Send loyalty-action messages",
        task="members.dispatch_loyalty_messages",
        crontab={"minute": "*"},
        description="Turns new loyalty events into messages and sends the pending ones (loyalty-action SMS).",
    ),
    Schedule(
        name="Converge member state",
        task="members.reconcile_pending",
        crontab={"minute": "*"},
        description="Sends member changes that wait (a lost task, a vendor that was failing) to each vendor.",
    ),
    Schedule(
        name="Apply waiting callbacks",
        task="integrations.sweep_received_callbacks",
        crontab={"minute": "*"},
        description="Applies stored callbacks whose processing task was lost (normally none).",
    ),
    Schedule(
        name="Check that every queue has a worker",
        task="integrations.send_worker_heartbeats",
        crontab={"minute": "*"},
        description="Puts a heartbeat on every queue; /healthz turns 503 when a queue's goes unanswered.",
    ),
    Schedule(
        name="Count callbacks for the dashboard",
        task="integrations.roll_up_callbacks",
        crontab={"minute": "*"},
        description="Adds the callbacks stored in the last minutes to the hourly counts of the dashboard and /metrics.",
    ),
    Schedule(
        name="Prune old records",
        task="integrations.prune_old_records",
        crontab={"minute": "17", "hour": "3"},
        description="Deletes what is past its retention: vendor calls, job runs, processed webhook events, settled "
        "messages and their loyalty events, members' change records (never what still waits or is uncertain).",
    ),
)
# The shared jobs above, then each vendor's own (declared in its spec); filled in place, again whenever the registry
# changes (a vendor package added by EXTRA_VENDOR_PACKAGES).
SCHEDULES: list[Schedule] = []
NAMES: dict[str, str] = {}


def catalogue(**kwargs: Any) -> None:
    SCHEDULES[:] = [*CORE_SCHEDULES, *(schedule for spec in VENDORS.values() for schedule in spec.schedules)]
    NAMES.clear()
    NAMES.update({schedule.task: schedule.name for schedule in SCHEDULES})


catalogue()
registry_changed.connect(catalogue, dispatch_uid="integrations.job_catalog")


def job_label(task_name: str) -> str:
    """A job in words: its schedule's name ("Send loyalty-action messages"), else its task's ("Export segment")."""
    if task_name in NAMES:
        return NAMES[task_name]
    name = task_name.rsplit(".", 1)[-1].replace("_", " ")
    return name[:1].upper() + name[1:]
