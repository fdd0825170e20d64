from django.apps import AppConfig


class AttentiveConfig(AppConfig):
    """Attentive's tasks and admin templates live in this package (an app so that both are found)."""

    name = "integrations.attentive"
    label = "attentive"
    verbose_name = "Attentive"
