"""Bazaarvoice as a vendor: Conversations API hosts, the passkey and the e-mail shared secret."""

from django import forms

from integrations.vendor_spec import SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="bazaarvoice",
    label="Bazaarvoice",
    package="integrations.bazaarvoice",
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
)
