"""The schedules that start the portal's jobs: created after every migrate from the catalogue
(integrations/job_catalog.py), each read in words with its next runs and how its last run went, and edited in the
few kinds the portal offers (every N minutes, daily at a time, a cron expression for experts). django-celery-beat
keeps them in its tables; beat picks up an edit without a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from integrations.job_catalog import SCHEDULES
from integrations.models import JobRun

# Minutes that divide an hour: "every N minutes" with any other N would bunch up at the hour.
EVEN_MINUTES = tuple(n for n in range(1, 60) if 60 % n == 0)
# How far ahead a preview looks for run times (a schedule that fires less often shows fewer of them).
PREVIEW_HORIZON = timedelta(days=400)


@dataclass(frozen=True)
class Job:
    task: PeriodicTask
    last_run: JobRun | None

    @property
    def schedule_in_words(self) -> str:
        return describe(self.task)

    @property
    def next_run(self) -> datetime | None:
        if not self.task.enabled or self.task.crontab is None:
            return None
        return next(iter(next_runs(self.task.crontab, count=1)), None)


def scheduled_jobs() -> list[Job]:
    """Every scheduled job with its latest run (one query for the runs, whatever the number of jobs)."""
    latest = JobRun.objects.filter(job=OuterRef("task")).order_by("-started_at").values("pk")[:1]
    tasks = PeriodicTask.objects.select_related("crontab", "interval").annotate(last_run_pk=Subquery(latest))
    tasks = list(tasks.exclude(task="celery.backend_cleanup").order_by("name"))
    runs = JobRun.objects.in_bulk([t.last_run_pk for t in tasks if t.last_run_pk])
    return [Job(task, runs.get(task.last_run_pk)) for task in tasks]


def describe(task: PeriodicTask) -> str:
    """ "Every minute", "At 03:17 AM (UTC)", "every 5 minutes"; a job without a schedule it understands says so."""
    if task.crontab is not None:
        words = task.crontab.human_readable
        zone = str(task.crontab.timezone)
        return words if words.endswith(zone) else f"{words} {zone}"
    if task.interval is not None:
        every, period = task.interval.every, task.interval.period  # period: "minutes", "hours", "days", ...
        return f"every {period.removesuffix('s')}" if every == 1 else f"every {every} {period}"
    return "no recurring schedule"


class ExpandedCron(Protocol):
    """A celery crontab once made: each field expanded to the set of values it matches. celery-types does not
    declare these attributes, though celery's crontab sets every one of them in its constructor."""

    minute: set[int]
    hour: set[int]
    day_of_week: set[int]
    day_of_month: set[int]
    month_of_year: set[int]


def cron_fields(schedule: CrontabSchedule) -> ExpandedCron:
    made = crontab(
        minute=schedule.minute,
        hour=schedule.hour,
        day_of_week=schedule.day_of_week,
        day_of_month=schedule.day_of_month,
        month_of_year=schedule.month_of_year,
    )
    return cast(ExpandedCron, made)


def next_runs(schedule: CrontabSchedule, *, count: int = 5, after: datetime | None = None) -> list[datetime]:
    """The next `count` times the schedule fires after `after` (now), as aware datetimes in the schedule's zone."""
    zone = ZoneInfo(str(schedule.timezone))
    start = (after or timezone.now()).astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    return list(_firings(cron_fields(schedule), start, count))


def _firings(cron: ExpandedCron, start: datetime, count: int) -> Iterator[datetime]:
    """Walk the calendar from `start`, skipping whole days and hours that cannot match (fast for daily schedules)."""
    moment, end, found = start, start + PREVIEW_HORIZON, 0
    while moment < end and found < count:
        cron_weekday = (moment.weekday() + 1) % 7  # cron counts from Sunday = 0
        if (
            moment.month not in cron.month_of_year
            or moment.day not in cron.day_of_month
            or cron_weekday not in cron.day_of_week
        ):
            moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
            continue
        if moment.hour not in cron.hour:
            moment = (moment + timedelta(hours=1)).replace(minute=0)
            continue
        if moment.minute in cron.minute:
            yield moment
            found += 1
        moment += timedelta(minutes=1)


@dataclass(frozen=True)
class ScheduleChoice:
    """What an admin asks for: every N minutes, daily at HH:MM, or a five-field cron expression, in a time zone."""

    kind: str  # "minutes" | "daily" | "cron"
    every_minutes: int | None = None
    daily_at: str = ""  # "HH:MM"
    cron: str = ""
    time_zone: str = "UTC"

    def crontab_fields(self) -> dict[str, str]:
        if self.kind == "minutes":
            # Cron's */N restarts at every hour: only a divisor of 60 keeps the runs evenly spaced.
            if not self.every_minutes or 60 % self.every_minutes or self.every_minutes == 60:
                raise ValidationError(
                    {"every_minutes": f"Give one of {', '.join(map(str, EVEN_MINUTES))} (runs stay evenly spaced)."}
                )
            minute = "*" if self.every_minutes == 1 else f"*/{self.every_minutes}"
            return {"minute": minute, "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
        if self.kind == "daily":
            at_hour, at_minute = parse_time_of_day(self.daily_at)
            return {"minute": str(at_minute), "hour": str(at_hour), "day_of_week": "*", "day_of_month": "*",
                    "month_of_year": "*"}  # fmt: skip
        if self.kind == "cron":
            return parse_cron(self.cron)
        raise ValidationError({"kind": "Choose every N minutes, daily at a time, or a cron expression."})


def parse_time_of_day(value: str) -> tuple[int, int]:
    try:
        parsed = datetime.strptime(value.strip(), "%H:%M")
    except ValueError:
        raise ValidationError({"daily_at": "Give a time of day as HH:MM, e.g. 03:15 or 18:00."}) from None
    return parsed.hour, parsed.minute


CRON_NAMES = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def parse_cron(expression: str) -> dict[str, str]:
    parts = expression.split()
    if len(parts) != len(CRON_NAMES):
        raise ValidationError(
            {"cron": "A cron expression has five fields: minute hour day-of-month month day-of-week, e.g. 0 6 * * 1-5."}
        )
    fields = dict(zip(CRON_NAMES, parts, strict=True))
    check_field_lengths(fields)
    try:
        crontab(**fields)  # celery parses each field the way beat will
    except ValueError as exc:
        raise ValidationError({"cron": f"Beat cannot read this expression: {str(exc).rstrip('.')}."}) from None
    return fields


def cron_field_max_length(name: str) -> int:
    """What beat's CrontabSchedule column holds for a field (PostgreSQL refuses a longer value)."""
    return CrontabSchedule._meta.get_field(name).max_length


# The longest expression that can fit: every field at its column's length, with the spaces between them.
CRON_MAX_LENGTH = sum(map(cron_field_max_length, CRON_NAMES)) + len(CRON_NAMES) - 1


def check_field_lengths(fields: dict[str, str]) -> None:
    """Each field must fit its column; the message names the first that does not (before celery parses it)."""
    for name, value in fields.items():
        limit = cron_field_max_length(name)
        if len(value) > limit:
            label = name.replace("_", " ")
            raise ValidationError(
                {"cron": f"The {label} field is {len(value)} characters long; at most {limit} fit. Use ranges (1-5) "
                         "or steps (*/2) instead of long lists."}
            )  # fmt: skip


def preview(choice: ScheduleChoice, *, count: int = 5) -> list[datetime]:
    """The next run times of a schedule not saved yet."""
    return next_runs(CrontabSchedule(**choice.crontab_fields(), timezone=choice.time_zone), count=count)


def reschedule(task: PeriodicTask, choice: ScheduleChoice) -> PeriodicTask:
    """Give a job the chosen schedule (beat notices the change on its next tick)."""
    schedule, _ = CrontabSchedule.objects.get_or_create(**choice.crontab_fields(), timezone=choice.time_zone)
    task.crontab, task.interval, task.solar, task.clocked = schedule, None, None, None
    task.save()
    return task


def set_enabled(task: PeriodicTask, enabled: bool) -> None:
    """Switch a job on or off. A full save: django-celery-beat forgets the last run of a job switched off, so one
    switched back on waits for its next time instead of running at once as "overdue"."""
    task.enabled = enabled
    task.save()


def choice_for(task: PeriodicTask) -> ScheduleChoice:
    """The editor's starting point for a job's current schedule."""
    cron = task.crontab
    if cron is None:
        return ScheduleChoice(kind="minutes", every_minutes=1)
    zone = str(cron.timezone)
    every_day = (cron.day_of_week, cron.day_of_month, cron.month_of_year) == ("*", "*", "*")
    if every_day and cron.hour == "*" and (cron.minute == "*" or cron.minute.startswith("*/")):
        minutes = 1 if cron.minute == "*" else int(cron.minute[2:])
        return ScheduleChoice(kind="minutes", every_minutes=minutes, time_zone=zone)
    if every_day and cron.hour.isdigit() and cron.minute.isdigit():
        return ScheduleChoice(kind="daily", daily_at=f"{int(cron.hour):02d}:{int(cron.minute):02d}", time_zone=zone)
    expression = " ".join(getattr(cron, name) for name in CRON_NAMES)
    return ScheduleChoice(kind="cron", cron=expression, time_zone=zone)


def ensure_schedules() -> list[str]:
    """Create the portal's schedules that do not exist yet; never overwrite an admin's edits. Returns the names
    created."""
    created = []
    for schedule in SCHEDULES:
        if PeriodicTask.objects.filter(name=schedule.name).exists():
            continue
        cron_row, _ = CrontabSchedule.objects.get_or_create(**schedule.crontab, timezone="UTC")
        PeriodicTask.objects.create(
            name=schedule.name,
            task=schedule.task,
            crontab=cron_row,
            kwargs=json.dumps({}),
            description=schedule.description,
        )
        created.append(schedule.name)
    return created
