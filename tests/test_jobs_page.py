"""The Jobs page and the task navigation: jobs in words, switched, run now and rescheduled with a preview; the
sidebar grouped by task with celery-beat's raw tables out of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from integrations import schedules
from integrations.job_runs import current_run, report_progress, run_job
from integrations.models import JobRun

pytestmark = pytest.mark.django_db


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def task_named(name: str) -> PeriodicTask:
    return PeriodicTask.objects.get(name=name)


def test_the_jobs_page_says_each_job_its_schedule_next_run_and_last_outcome_in_words(admin_http):
    JobRun.objects.create(
        job="members.dispatch_loyalty_messages", outcome=JobRun.Outcome.SUCCEEDED, counts={"sent": 3, "held": 1}
    )
    page = text_of(admin_http.get("/admin/jobs/"))
    assert "Send loyalty-action messages" in page and "Every minute UTC" in page
    assert "At 03:17 AM UTC" in page  # pruning, nightly
    assert "3 sent" in page and "1 held" in page and "{" not in page.split("Run now")[0][-200:]  # words, not JSON
    assert "never run" in page


def test_a_job_is_switched_off_and_on_and_run_now(admin_http, eager_celery):
    task = task_named("Prune old records")
    admin_http.post(f"/admin/jobs/{task.pk}/switch/", {"enabled": "0"})
    task.refresh_from_db()
    assert task.enabled is False
    admin_http.post(f"/admin/jobs/{task.pk}/switch/", {"enabled": "1"})
    task.refresh_from_db()
    assert task.enabled is True
    admin_http.post(f"/admin/jobs/{task.pk}/run/")
    assert JobRun.objects.filter(job="integrations.prune_old_records", outcome=JobRun.Outcome.SUCCEEDED).exists()


def test_daily_at_a_time_in_a_zone_is_previewed_then_saved(admin_http):
    task = task_named("Prune old records")
    form = {"kind": "daily", "daily_at": "09:30", "time_zone": "America/New_York", "every_minutes": "", "cron": ""}
    preview = admin_http.post(f"/admin/jobs/{task.pk}/schedule/", {**form, "preview": "1"})
    assert len(re.findall(r"<li>[^<]*\d\d:\d\d", preview.content.decode())) == 5
    task.refresh_from_db()
    assert task.crontab.hour == "3"  # a preview changes nothing
    admin_http.post(f"/admin/jobs/{task.pk}/schedule/", {**form, "save": "1"})
    task.refresh_from_db()
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == ("9", "30", "America/New_York")


def test_a_cron_expression_beat_cannot_read_is_refused_in_words(admin_http):
    task = task_named("Prune old records")
    page = admin_http.post(
        f"/admin/jobs/{task.pk}/schedule/", {"kind": "cron", "cron": "0 99 * * *", "time_zone": "UTC", "save": "1"}
    )
    assert "Beat cannot read this expression" in page.content.decode()
    task.refresh_from_db()
    assert task.crontab.hour == "3"


def test_client_users_cannot_use_the_jobs_page(alice_http):
    task = task_named("Prune old records")
    assert alice_http.get("/admin/jobs/").status_code == 403
    assert alice_http.post(f"/admin/jobs/{task.pk}/switch/", {"enabled": "0"}).status_code == 403
    assert task_named("Prune old records").enabled


def test_next_runs_skip_to_matching_days_in_the_schedules_zone():
    weekdays_at_six = CrontabSchedule(minute="0", hour="6", day_of_week="1-5", timezone="Europe/London")
    runs = schedules.next_runs(weekdays_at_six, after=datetime(2026, 11, 27, 12, 0, tzinfo=UTC))  # a Friday
    assert [run.strftime("%a %H:%M") for run in runs] == ["Mon 06:00", "Tue 06:00", "Wed 06:00", "Thu 06:00",
                                                          "Fri 06:00"]  # fmt: skip


def test_the_sidebar_groups_models_by_task_and_hides_raw_schedule_tables(admin_http):
    page = admin_http.get("/admin/").content.decode()
    sections = re.findall(r"<caption>\s*<a[^>]*>([^<]+)</a>", page)
    assert sections[:5] == ["Clients &amp; connections", "Members &amp; segments", "Messaging",
                            "Vendors&#x27; activity", "Jobs"]  # fmt: skip
    assert "/admin/jobs/" in page
    for raw in ("crontabschedule", "intervalschedule", "solarschedule", "clockedschedule"):
        assert f"/admin/django_celery_beat/{raw}/" not in page
        assert not any(model._meta.model_name == raw for model in admin.site._registry)


def test_long_work_reports_how_far_it_has_got_and_the_page_polls_it(admin_http, alice_http, client_a, client_b):
    seen = {}

    def work():
        report_progress({"imported": 250}, done=250, total=1000)
        seen.update(admin_http.get(f"/admin/jobs/runs/{current_run().pk}/progress/").json())
        return {"imported": 1000}

    run = run_job("members.import_members", work, client=client_b)
    assert seen["outcome"] == "running" and seen["percent"] == 25 and seen["finished"] is False
    assert seen["counts"] == "250 imported" and seen["eta_seconds"] is not None
    assert admin_http.get(f"/admin/jobs/runs/{run.pk}/progress/").json()["finished"] is True
    page = admin_http.get(f"/admin/integrations/jobrun/{run.pk}/change/").content.decode()
    assert 'class="job-progress"' in page and "job_progress.js" in page
    # A client user follows their own client's runs only.
    assert alice_http.get(f"/admin/jobs/runs/{run.pk}/progress/").status_code == 404
    own = JobRun.objects.create(job="members.import_members", client=client_a, done=1, total=4)
    assert alice_http.get(f"/admin/jobs/runs/{own.pk}/progress/").json()["percent"] == 25


def test_a_job_switched_off_and_on_forgets_its_last_run_so_it_is_not_overdue(admin_http):
    task = task_named("Prune old records")
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=datetime(2026, 1, 1, tzinfo=UTC))
    admin_http.post(f"/admin/jobs/{task.pk}/switch/", {"enabled": "0"})
    admin_http.post(f"/admin/jobs/{task.pk}/switch/", {"enabled": "1"})
    task.refresh_from_db()
    assert task.enabled and task.last_run_at is None  # beat starts it afresh, at its next time


def test_run_now_of_a_task_the_portal_does_not_have_says_so(admin_http):
    stray = PeriodicTask.objects.create(
        name="Stray", task="nowhere.to_be_found", crontab=task_named("Prune old records").crontab
    )
    page = admin_http.post(f"/admin/jobs/{stray.pk}/run/", follow=True)
    assert page.status_code == 200 and "names a task the portal does not have" in page.content.decode()


def test_every_n_minutes_must_divide_the_hour(admin_http):
    task = task_named("Prune old records")
    page = admin_http.post(
        f"/admin/jobs/{task.pk}/schedule/", {"kind": "minutes", "every_minutes": "7", "time_zone": "UTC", "save": "1"}
    )
    assert "a divisor of 60" in page.content.decode() or "evenly spaced" in page.content.decode()
    task.refresh_from_db()
    assert task.crontab.hour == "3"


def test_job_runs_are_named_as_the_jobs_page_names_them(admin_http):
    run = JobRun.objects.create(job="members.dispatch_loyalty_messages", outcome=JobRun.Outcome.SUCCEEDED)
    assert run.job_label == "Send loyalty-action messages"
    assert "Send loyalty-action messages" in admin_http.get("/admin/integrations/jobrun/").content.decode()
    assert JobRun(job="members.export_segment").job_label == "Export segment"  # not scheduled: its task in words
