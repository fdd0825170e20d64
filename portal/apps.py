from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """The Django admin, with the portal's site (dashboard index, task navigation, Jobs page) as the default site."""

    default_site = "portal.admin.PortalAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        hide_raw_schedule_tables()


def hide_raw_schedule_tables() -> None:
    """Schedules are edited on the Jobs page; django-celery-beat's raw schedule tables (clocked, solar, crontab,
    interval) would only clutter the admin."""
    # Imported here: an AppConfig module is loaded before the models it would import are ready.
    from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, SolarSchedule

    for model in (ClockedSchedule, SolarSchedule, CrontabSchedule, IntervalSchedule):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
