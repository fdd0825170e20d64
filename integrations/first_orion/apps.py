from django.apps import AppConfig


class FirstOrionConfig(AppConfig):
    """The records First Orion work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.first_orion"
    label = "first_orion"
    verbose_name = "First Orion"
