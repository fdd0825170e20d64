"""First Orion ENGAGE as a vendor: the federated API host, client id and secret."""

from django import forms

from integrations.vendor_spec import SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="first_orion",
    label="First Orion ENGAGE",
    package="integrations.first_orion",
    base_urls={"production": "https://api.fo-engage.com"},
    secrets=(SecretSpec("client_secret", "Client secret"),),
    setting_fields={"client_id": forms.CharField(help_text="Federated client id from First Orion.")},
    default_rate_limit=5.0,
)
