"""Annex Cloud as a vendor: where the Loyalty API v3 lives, the site's secrets and settings."""

from django import forms

from integrations.vendor_spec import SecretSpec, VendorSpec

SPEC = VendorSpec(
    key="annex_cloud",
    label="Annex Cloud",
    package="integrations.annexcloud",
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
        "points_action_id": forms.CharField(
            required=False,
            max_length=50,
            label="Points action id",
            help_text="The Annex Cloud action id of points credited or debited from the portal; blank means 100, "
            "Annex Cloud's manual credit/debit action.",
        ),
    },
    default_rate_limit=5.0,
)
