"""SessionM: welcome, offer-issued and offer-expiring messages, profiles, transactions."""

from django.apps import AppConfig


class SessionMConfig(AppConfig):
    """The records SessionM work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.sessionm"
    label = "sessionm"
    verbose_name = "SessionM"

    def ready(self) -> None:
        # Imported once the apps are loaded (the receivers import models): connects the receivers that note a
        # connection's first activation, record the forget of a deleted member's profile and free interrupted scans.
        from integrations.sessionm import signals  # noqa: F401
