from django.apps import AppConfig


class BazaarvoiceConfig(AppConfig):
    """The records Bazaarvoice work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.bazaarvoice"
    label = "bazaarvoice"
    verbose_name = "Bazaarvoice"

    def ready(self) -> None:
        # Imported once the apps are loaded (the receiver imports models): connects the receiver that releases
        # the pulls of runs closed as interrupted (integrations.job_runs.runs_interrupted).
        from integrations.bazaarvoice import signals  # noqa: F401
