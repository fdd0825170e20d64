"""The portal project: settings, URLs, the Celery app, the admin site and dashboard, health check."""

from portal.celery import app as celery_app

__all__ = ["celery_app"]
