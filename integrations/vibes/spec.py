"""Vibes as a vendor: the public API host, API and callback credentials, company key and callback guards."""

from django import forms

from integrations.vendor_spec import SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="vibes",
    label="Vibes",
    package="integrations.vibes",
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
)
