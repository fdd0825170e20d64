"""What the portal knows about each vendor before any code talks to it: default base URLs per environment, the
secrets a connection holds, and the settings it accepts (as form fields, so the admin and the flows validate
them the same way). Defaults come from vendor-facts.md; every one is overridable per connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError


@dataclass(frozen=True)
class SecretSpec:
    name: str
    label: str
    required: bool = True
    help_text: str = ""


@dataclass(frozen=True)
class VendorSpec:
    key: str
    label: str
    base_urls: dict[str, str]
    secrets: tuple[SecretSpec, ...] = ()
    setting_fields: dict[str, forms.Field] = field(default_factory=dict)
    # Requests per second this portal allows itself per connection, unless the connection's settings say otherwise.
    default_rate_limit: float = 10.0

    def default_base_url(self, environment: str) -> str:
        if environment == "sandbox":
            return f"{settings.SANDBOX_BASE_URL.rstrip('/')}/{self.key}"
        return self.base_urls.get(environment) or self.base_urls["production"]

    def settings_form_class(self) -> type[forms.Form]:
        common = {
            "rate_limit_per_second": forms.FloatField(
                min_value=0.1,
                initial=self.default_rate_limit,
                required=False,
                help_text="Client-side cap on calls per second to this vendor for this connection.",
            )
        }
        return type(f"{self.key.title()}SettingsForm", (forms.Form,), {**common, **self.setting_fields})

    def clean_settings(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validate settings against this vendor's fields; raises ValidationError with per-field messages."""
        unknown = set(values) - set(self.settings_form_class().base_fields)
        if unknown:
            raise ValidationError(f"Unknown setting(s) for {self.label}: {', '.join(sorted(unknown))}.")
        form = self.settings_form_class()(data=values)
        if not form.is_valid():
            raise ValidationError(
                [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()],
            )
        return {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}


VENDORS: dict[str, VendorSpec] = {
    spec.key: spec
    for spec in (
        VendorSpec(
            key="annex_cloud",
            label="Annex Cloud",
            base_urls={"production": "https://s15.socialannex.net/api/3.0"},
            secrets=(
                SecretSpec("api_secret", "API shared secret", help_text="Signs every Loyalty API v3 call."),
                SecretSpec(
                    "loyalty_token",
                    "Loyalty token",
                    required=False,
                    help_text="Given to partners such as Attentive inside the partner access token.",
                ),
            ),
            setting_fields={
                "jwt_subject": forms.CharField(
                    required=False, help_text="The `sub` claim of signed requests (Annex Cloud account e-mail)."
                ),
            },
            default_rate_limit=5.0,
        ),
        VendorSpec(
            key="attentive",
            label="Attentive",
            base_urls={"production": "https://api.attentivemobile.com"},
            secrets=(
                SecretSpec("api_key", "API key", help_text="From a private app in Attentive's Integrations tab."),
                SecretSpec(
                    "legacy_token",
                    "Legacy messages token",
                    required=False,
                    help_text="Activated by Attentive (legacyapi@attentivemobile.com); needed to send messages.",
                ),
            ),
            setting_fields={
                "messages_path": forms.CharField(
                    required=False, initial="/v1/subscriptions/messages", help_text="Path of the messages endpoint."
                ),
            },
            default_rate_limit=10.0,
        ),
        VendorSpec(
            key="vibes",
            label="Vibes",
            base_urls={"production": "https://public-api.vibescm.com", "staging": "https://public-api.vibescm.com"},
            secrets=(
                SecretSpec("api_username", "API username"),
                SecretSpec("api_password", "API password"),
                SecretSpec(
                    "callback_password",
                    "Callback basic-auth password",
                    required=False,
                    help_text="Optional extra check on callbacks, with the callback username setting.",
                ),
            ),
            setting_fields={
                "company_key": forms.CharField(help_text="Your Vibes company key."),
                "callback_username": forms.CharField(
                    required=False, help_text="Set it (and the callback password) to require HTTP Basic on callbacks."
                ),
                "callback_ip_allowlist": forms.CharField(
                    required=False,
                    help_text="Optional: addresses or networks allowed to deliver callbacks, comma-separated; "
                    "the presets vibes-us and vibes-eu stand for Vibes' published addresses.",
                ),
            },
            default_rate_limit=50.0,
        ),
        VendorSpec(
            key="first_orion",
            label="First Orion ENGAGE",
            base_urls={"production": "https://api.fo-engage.com"},
            secrets=(SecretSpec("client_secret", "Client secret"),),
            setting_fields={"client_id": forms.CharField(help_text="Federated client id from First Orion.")},
            default_rate_limit=5.0,
        ),
        VendorSpec(
            key="bazaarvoice",
            label="Bazaarvoice",
            base_urls={"production": "https://api.bazaarvoice.com", "staging": "https://stg.api.bazaarvoice.com"},
            secrets=(
                SecretSpec("passkey", "Conversations API passkey"),
                SecretSpec("shared_secret", "Shared secret", help_text="Decrypts reviewers' e-mail addresses."),
            ),
            setting_fields={
                "email_key_derivation": forms.ChoiceField(
                    required=False,
                    choices=[("plain16", "First 16 bytes of the secret"), ("sha1", "First 16 bytes of SHA-1")],
                    initial="plain16",
                ),
            },
            default_rate_limit=2.0,
        ),
        VendorSpec(
            key="sessionm",
            label="SessionM",
            # The host is the tenant's own; this default only marks where it goes.
            base_urls={"production": "https://api.sessionm.com"},
            secrets=(SecretSpec("api_key", "API key"), SecretSpec("api_secret", "API secret")),
            setting_fields={
                "store_id": forms.CharField(required=False),
                "connect_client_id": forms.CharField(required=False),
            },
            default_rate_limit=10.0,
        ),
    )
}

VENDOR_CHOICES = [(spec.key, spec.label) for spec in VENDORS.values()]
