"""First Orion ENGAGE as a vendor: the federated API host (US or international, a site admin's choice), the client
id and secret, how many destinations go in one batch push, and the client-user permissions on its records."""

from django import forms

from integrations.vendor_spec import Schedule, SecretSpec, VendorSpec

US_BASE_URL = "https://api.fo-engage.com"
INTERNATIONAL_BASE_URL = "https://api.engage-ae.com"
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 5000

SPEC = VendorSpec(
    key="first_orion",
    label="First Orion ENGAGE",
    package="integrations.first_orion",
    base_urls={"production": US_BASE_URL},
    secrets=(SecretSpec("client_secret", "Client secret", help_text="Delivered by First Orion with the client id."),),
    setting_fields={
        "client_id": forms.CharField(help_text="Federated client id from First Orion."),
        "region": forms.ChoiceField(
            required=False,
            choices=[("us", f"US ({US_BASE_URL})"), ("international", f"International ({INTERNATIONAL_BASE_URL})")],
            initial="us",
            help_text="Which First Orion ENGAGE host the account lives on (production only; site admins only).",
        ),
        "batch_size": forms.IntegerField(
            required=False,
            min_value=1,
            max_value=MAX_BATCH_SIZE,
            initial=DEFAULT_BATCH_SIZE,
            help_text=f"Destinations per batch push (default {DEFAULT_BATCH_SIZE}).",
        ),
    },
    # The region decides where the client secret goes: like the environment and base URL, a site admin's choice.
    region_setting="region",
    regional_base_urls={"us": US_BASE_URL, "international": INTERNATIONAL_BASE_URL},
    site_admin_settings=("region",),
    default_rate_limit=5.0,
    schedules=(
        Schedule(
            name="Resume First Orion pushes",
            task="first_orion.resume_pushes",
            crontab={"minute": "*"},
            description="Continues pushes whose task was lost or whose connection was not usable (none are resent).",
        ),
    ),
    # Long-running pushes don't hold up member sync.
    task_queues={"first_orion.*": "bulk"},
    client_user_permissions=(
        "view_programcontent",
        "add_programcontent",
        "change_programcontent",
        "view_push",
        "add_push",
        "view_pushbatch",
    ),
)
