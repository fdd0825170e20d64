"""SessionM as a vendor: the tenant's API host, Core API key and secret, Connect store and client ids."""

from django import forms

from integrations.vendor_spec import SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="sessionm",
    label="SessionM",
    package="integrations.sessionm",
    # The host is the tenant's own; this default only marks where it goes.
    base_urls={"production": "https://api.sessionm.com"},
    secrets=(SecretSpec("api_key", "API key"), SecretSpec("api_secret", "API secret")),
    setting_fields={
        "store_id": forms.CharField(required=False),
        "connect_client_id": forms.CharField(required=False),
    },
    default_rate_limit=10.0,
)
