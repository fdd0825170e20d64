from django.apps import AppConfig


class VibesConfig(AppConfig):
    """The records Vibes work keeps (list subscriptions), its tasks and its command live in this package."""

    name = "integrations.vibes"
    label = "vibes"
    verbose_name = "Vibes"
