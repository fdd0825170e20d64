"""The Jobs page: every scheduled job in plain words with its next run and last outcome, switched on or off, run now,
and its schedule edited with a preview of the next run times. Site admins only: the jobs run for every client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from celery.exceptions import NotRegistered
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from django_celery_beat.models import PeriodicTask

from integrations import schedules
from integrations.models import JobRun, time_zone_names
from integrations.queue import task_named
from integrations.tenancy import is_site_admin, scope_to_clients
from portal import zones


def site_context(request: HttpRequest) -> dict[str, Any]:
    return admin.site.each_context(request)


def site_admin_only(request: HttpRequest) -> None:
    if not is_site_admin(request.user):
        raise PermissionDenied


def jobs_page(request: HttpRequest) -> TemplateResponse:
    site_admin_only(request)
    context = {**site_context(request), "title": "Jobs", "jobs": schedules.scheduled_jobs()}
    return TemplateResponse(request, "admin/jobs/index.html", context)


@require_POST
def switch_job(request: HttpRequest, pk: int) -> HttpResponse:
    site_admin_only(request)
    task = get_object_or_404(PeriodicTask, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    schedules.set_enabled(task, enabled)
    messages.success(request, f"“{task.name}” is {'on' if enabled else 'off'}.")
    return HttpResponseRedirect(reverse("admin:jobs"))


@require_POST
def run_job_now(request: HttpRequest, pk: int) -> HttpResponse:
    site_admin_only(request)
    task = get_object_or_404(PeriodicTask, pk=pk)
    try:
        job = task_named(task.task)
        args, kwargs = json.loads(task.args or "[]"), json.loads(task.kwargs or "{}")
    except (NotRegistered, ValueError):
        messages.error(
            request,
            f"“{task.name}” names a task the portal does not have ({task.task}) or arguments that are not JSON: "
            "correct it under Periodic tasks, or delete it; `manage.py migrate` recreates the portal's own jobs.",
        )
        return HttpResponseRedirect(reverse("admin:jobs"))
    job.apply_async(args=args, kwargs=kwargs)
    messages.success(request, f"“{task.name}” is queued: its run appears under Last run when a worker picks it up.")
    return HttpResponseRedirect(reverse("admin:jobs"))


KINDS = [("minutes", "Every N minutes"), ("daily", "Daily at a time"), ("cron", "Cron expression (for experts)")]


class ScheduleForm(forms.Form):
    kind = forms.ChoiceField(choices=KINDS, widget=forms.RadioSelect, label="Runs")
    every_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=30,
        label="Every … minutes",
        help_text=f"One of {', '.join(map(str, schedules.EVEN_MINUTES))}: a divisor of 60, so runs stay evenly spaced.",
    )
    daily_at = forms.CharField(
        required=False, max_length=8, label="Daily at", help_text="HH:MM, 24-hour clock, e.g. 03:15."
    )
    cron = forms.CharField(
        required=False,
        max_length=schedules.CRON_MAX_LENGTH,  # each field is checked against its own column too
        label="Cron expression",
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. “0 6 * * 1-5” = 06:00 on weekdays.",
    )
    time_zone = forms.ChoiceField(
        label="Time zone", help_text="The schedule's clock: “daily at 09:00” means 09:00 in this zone."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = [(name, name) for name in sorted(time_zone_names())]

    def choice(self) -> schedules.ScheduleChoice:
        """The schedule asked for; raises ValidationError (per field) when it cannot be read."""
        data = self.cleaned_data
        choice = schedules.ScheduleChoice(
            kind=data["kind"],
            every_minutes=data.get("every_minutes"),
            daily_at=data.get("daily_at") or "",
            cron=data.get("cron") or "",
            time_zone=data["time_zone"],
        )
        choice.crontab_fields()
        return choice


@dataclass(frozen=True)
class PreviewRun:
    """A coming run in the schedule's own zone (what "daily at 09:00" was typed in), and in the viewer's when that
    zone differs, each named: a preview in one zone only read as a schedule in the wrong one."""

    at: datetime
    for_viewer: datetime | None


def preview_runs(moments: list[datetime], schedule_zone: str, viewer: ZoneInfo) -> list[PreviewRun]:
    zone = ZoneInfo(schedule_zone)
    return [
        PreviewRun(moment.astimezone(zone), moment.astimezone(viewer) if viewer.key != zone.key else None)
        for moment in moments
    ]


def edit_schedule(request: HttpRequest, pk: int) -> TemplateResponse | HttpResponse:
    site_admin_only(request)
    task = get_object_or_404(PeriodicTask.objects.select_related("crontab"), pk=pk)
    current = schedules.choice_for(task)
    form = ScheduleForm(request.POST or None, initial=current.__dict__)
    runs, choice = [], None
    if form.is_valid():
        try:
            choice = form.choice()
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    if choice is not None and "save" in request.POST:
        schedules.reschedule(task, choice)
        messages.success(request, f"“{task.name}” now runs: {schedules.describe(task)}.")
        return HttpResponseRedirect(reverse("admin:jobs"))
    shown = choice or (current if task.crontab is not None and not request.POST else None)
    if shown is not None:
        runs = preview_runs(schedules.preview(shown), shown.time_zone, zones.viewer_zone(request.user))
    context = {
        **site_context(request),
        "title": f"Schedule of “{task.name}”",
        "task": task,
        "form": form,
        "runs": runs,
    }
    return TemplateResponse(request, "admin/jobs/schedule.html", context)


def run_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """How far a job run has got (the progress bars poll it); client users see their clients' runs only."""
    run = get_object_or_404(scope_to_clients(JobRun.objects.all(), request.user), pk=pk)
    return JsonResponse(
        {
            "outcome": run.outcome,
            "finished": run.outcome != JobRun.Outcome.RUNNING,
            "percent": run.percent,
            "done": run.done,
            "total": run.total,
            "counts": run.counts_in_words,
            "eta_seconds": run.eta_seconds,
        }
    )


def jobs_urls(site: admin.AdminSite) -> list[Any]:
    return [
        path("jobs/runs/<int:pk>/progress/", site.admin_view(run_progress), name="jobs_run_progress"),
        path("jobs/", site.admin_view(jobs_page), name="jobs"),
        path("jobs/<int:pk>/switch/", site.admin_view(switch_job), name="jobs_switch"),
        path("jobs/<int:pk>/run/", site.admin_view(run_job_now), name="jobs_run"),
        path("jobs/<int:pk>/schedule/", site.admin_view(edit_schedule), name="jobs_schedule"),
    ]
