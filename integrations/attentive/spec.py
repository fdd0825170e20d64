"""Attentive as a vendor: its API host, the private app key and legacy messages token, its settings."""

from django import forms

from integrations.vendor_spec import SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="attentive",
    label="Attentive",
    package="integrations.attentive",
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
    sends_messages=True,
)
