"""What the portal knows about a vendor before any code talks to it: default base URLs per environment, the
secrets a connection holds, the settings it accepts (as form fields, so the admin and the flows validate them the
same way), and what the vendor can do. Each vendor package declares one `VendorSpec` in its `spec.py`;
`integrations/vendors.py` collects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import ngettext


@dataclass(frozen=True)
class SecretSpec:
    name: str
    label: str
    required: bool = True
    help_text: str = ""


@dataclass(frozen=True)
class Schedule:
    """A schedule the portal creates if missing; once created it belongs to the admins who may edit it."""

    name: str
    task: str
    crontab: dict[str, str]
    description: str


@dataclass(frozen=True)
class VendorSpec:
    key: str
    label: str
    # The package that holds everything about this vendor: api.py, flows.py, admin.py, sandbox.py, demo.py, webhooks.py.
    package: str
    base_urls: dict[str, str]
    secrets: tuple[SecretSpec, ...] = ()
    setting_fields: dict[str, forms.Field] = field(default_factory=dict)
    # Requests per second this portal allows itself per connection, unless the connection's settings say otherwise.
    default_rate_limit: float = 10.0
    # Whether message templates may send through this vendor (its flows module provides `message_sender`).
    sends_messages: bool = False
    # Whether the vendor knows a member by the mobile number (an SMS vendor): a member without one is nothing it can
    # use (no person, no TEXT subscription), so the portal records no sync state for such a member.
    keyed_by_mobile: bool = False
    # The vendor's recurring jobs (e.g. a pull every hour), created in django-celery-beat's tables if missing.
    schedules: tuple[Schedule, ...] = ()
    # The queue of each of its tasks, by task-name pattern (fnmatch, e.g. "first_orion.*"): read by the Celery
    # router (integrations/vendors.py `route_vendor_task`); tasks that match none go to the default queue.
    task_queues: dict[str, str] = field(default_factory=dict)
    # Admin permissions client users get on the records this vendor's app keeps (codenames, e.g. "view_push").
    client_user_permissions: tuple[str, ...] = ()
    # Vendors with regional hosts (First Orion: US / international): the setting that picks one of
    # `regional_base_urls` for production connections.
    region_setting: str = ""
    regional_base_urls: dict[str, str] = field(default_factory=dict)
    # Settings that only site admins may change (e.g. the region: it decides where the secrets are sent).
    site_admin_settings: tuple[str, ...] = ()

    def base_url_for(self, environment: str, settings: dict[str, Any]) -> str:
        """The default base URL of a connection in `environment` with these settings (its region, if any)."""
        region = settings.get(self.region_setting) if self.region_setting else None
        if environment == "production" and region in self.regional_base_urls:
            return self.regional_base_urls[region]
        return self.default_base_url(environment)

    def default_base_url(self, environment: str) -> str:
        if environment == "sandbox":
            return f"{settings.SANDBOX_BASE_URL.rstrip('/')}/{self.key}"
        return self.base_urls.get(environment) or self.base_urls["production"]

    @property
    def is_app(self) -> bool:
        """A vendor package with an `apps.py` is a Django app (its models, tasks, commands, templates are found);
        settings install it from the registry (integrations/vendors.py `vendor_apps`)."""
        return self.has_module("apps")

    @property
    def receives_callbacks(self) -> bool:
        """Vendors that call the portal have a webhooks module; their connections get a callback URL."""
        return self.has_module("webhooks")

    def has_module(self, role: str) -> bool:
        return find_spec(f"{self.package}.{role}") is not None

    def module(self, role: str) -> ModuleType | None:
        """The vendor's module for a role (`flows`, `admin`, `sandbox`, `demo`, `webhooks`), or None if it has none."""
        return import_module(f"{self.package}.{role}") if self.has_module(role) else None

    def settings_form_class(self) -> type[forms.Form]:
        common = {
            # No initial value: a saved form must not turn the default into a cap the admin never chose (a chosen
            # cap also holds the vendor's published per-endpoint limits down; the default never does).
            "rate_limit_per_second": forms.FloatField(
                min_value=0.1,
                required=False,
                widget=forms.NumberInput(attrs={"placeholder": f"{self.default_rate_limit:g}", "step": "any"}),
                help_text=f"Client-side cap on calls per second to {self.label} for this connection. Blank: "
                f"{self.default_rate_limit:g}/s, except on endpoints whose limits {self.label} publishes, which are "
                "used as published.",
            )
        }
        return type(f"{self.key.title()}SettingsForm", (forms.Form,), {**common, **self.setting_fields})

    def clean_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validate settings against this vendor's fields; raises ValidationError with per-field messages."""
        unknown = set(values) - set(self.settings_form_class().base_fields)
        if unknown:
            raise ValidationError(
                f"Unknown {ngettext('setting', 'settings', len(unknown))} for {self.label}: "
                f"{', '.join(sorted(unknown))}."
            )
        form = self.settings_form_class()(data=values)
        if not form.is_valid():
            raise ValidationError(
                [f"{name}: {' '.join(str(error) for error in errors)}" for name, errors in form.errors.items()],
            )
        return {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
