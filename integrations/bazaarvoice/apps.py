from django.apps import AppConfig


class BazaarvoiceConfig(AppConfig):
    """The records Bazaarvoice work keeps (its models, migrations and tasks live in this package)."""

    name = "integrations.bazaarvoice"
    label = "bazaarvoice"
    verbose_name = "Bazaarvoice"
