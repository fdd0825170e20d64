from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _after_migrate(**kwargs: Any) -> None:
    # Imported here because an AppConfig module is loaded before the models it would import are ready.
    from integrations.partitions import ensure_ahead
    from integrations.schedules import ensure_schedules
    from integrations.tenancy import ensure_client_users_group

    ensure_client_users_group()
    ensure_schedules()
    ensure_ahead(using=kwargs.get("using") or "default")  # PostgreSQL: the days ahead of the partitioned tables


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Registers the system check that a vendor's hooks match its spec (imported for that side effect).
        # Connects the shared receivers (a saved connection empties the callback token cache).
        from integrations import (
            checks,  # noqa: F401
            signals,  # noqa: F401
        )
        from integrations.vendors import register_extra_packages

        # Vendor packages the setting EXTRA_VENDOR_PACKAGES adds join the registry once every app is loaded.
        register_extra_packages()

        # After every migrate (and test database creation) the portal's group and schedules exist. Hooked to the
        # last of the portal's apps, so that every permission the group needs has been created before it.
        post_migrate.connect(
            _after_migrate, sender=apps.get_app_config("members"), dispatch_uid="integrations.after_migrate"
        )
