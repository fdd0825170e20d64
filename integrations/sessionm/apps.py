from django.apps import AppConfig


class SessionMConfig(AppConfig):
    """The records SessionM work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.sessionm"
    label = "sessionm"
    verbose_name = "SessionM"
