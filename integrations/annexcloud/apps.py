from django.apps import AppConfig


class AnnexCloudConfig(AppConfig):
    """Annex Cloud's admin templates live in this package (an app so that they are found)."""

    name = "integrations.annexcloud"
    label = "annex_cloud"
    verbose_name = "Annex Cloud"
