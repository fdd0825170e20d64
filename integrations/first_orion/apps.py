from django.apps import AppConfig


class FirstOrionConfig(AppConfig):
    """The records First Orion work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.first_orion"
    label = "first_orion"
    verbose_name = "First Orion"

    def ready(self) -> None:
        # Imported once the apps are loaded (the receiver imports models): connects the receiver that releases
        # the pushes of runs closed as interrupted (integrations.job_runs.runs_interrupted).
        from integrations.first_orion import signals  # noqa: F401
