"""The schedule editor bounds what it stores (issue 21, finding 12): a cron field longer than beat's column holds is
a form error naming the field, never a 500 (PostgreSQL refuses the value) nor a silently stored schedule."""

from __future__ import annotations

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

pytestmark = pytest.mark.django_db

# Celery reads a repeated hour as that hour: valid to beat, but 99 characters where the column holds 96.
LONG_HOUR = ",".join(["3"] * 50)


def save_cron(admin_http, expression: str):
    task = PeriodicTask.objects.get(name="Prune old records")
    response = admin_http.post(
        f"/admin/jobs/{task.pk}/schedule/", {"kind": "cron", "cron": expression, "time_zone": "UTC", "save": "1"}
    )
    task.refresh_from_db()
    return response, task


def test_a_cron_hour_longer_than_its_column_is_a_form_error(admin_http):
    assert len(LONG_HOUR) > CrontabSchedule._meta.get_field("hour").max_length
    schedules_before = CrontabSchedule.objects.count()
    response, task = save_cron(admin_http, f"0 {LONG_HOUR} * * *")
    assert response.status_code == 200
    assert "The hour field is 99 characters long; at most 96 fit" in response.content.decode()
    assert task.crontab.hour == "3" and task.crontab.minute == "17"
    assert CrontabSchedule.objects.count() == schedules_before


def test_a_huge_cron_expression_is_a_form_error(admin_http):
    response, task = save_cron(admin_http, "0 3 * * " + "1," * 50_000 + "1")
    assert response.status_code == 200
    assert "at most" in response.content.decode()
    assert task.crontab.day_of_week == "*"


def test_a_long_but_fitting_expression_is_saved(admin_http):
    hour = ",".join(["3"] * 48)  # 95 characters
    response, task = save_cron(admin_http, f"0 {hour} * * *")
    assert response.status_code == 302 and task.crontab.hour == hour
