"""SessionM: welcome, offer-issued and offer-expiring messages, profiles, transactions."""

from django.apps import AppConfig


class SessionMConfig(AppConfig):
    """The records SessionM work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.sessionm"
    label = "sessionm"
    verbose_name = "SessionM"

    def ready(self) -> None:
        # Imported once the apps are loaded (flows import models): connects the receiver that records the forget of
        # a deleted member's SessionM profile.
        from integrations.sessionm import flows  # noqa: F401
