"""SessionM as a vendor: the tenant's API host (a site admin enters it as the connection's base URL), the Core API
key and secret (HTTP Basic), the Connect store and client ids, Connect credentials when they differ, and the offer
warning window."""

from django import forms

from integrations.vendor_spec import Schedule, SecretSpec, VendorSpec

DEFAULT_WARNING_DAYS = 10

SPEC = VendorSpec(
    key="sessionm",
    label="SessionM",
    package="integrations.sessionm",
    # Every SessionM customer has its own tenant host: there is no default to fall back on (an empty production
    # URL makes verifying say "enter the tenant host" instead of sending credentials to a made-up host).
    base_urls={"production": ""},
    secrets=(
        SecretSpec("api_key", "Core API key"),
        SecretSpec("api_secret", "Core API secret"),
        SecretSpec("connect_api_key", "Connect API key", required=False, help_text="Blank: the Core API key."),
        SecretSpec("connect_api_secret", "Connect API secret", required=False, help_text="Blank: the Core API secret."),
    ),
    setting_fields={
        "store_id": forms.CharField(required=False, max_length=100, help_text="Connect store_id."),
        "connect_client_id": forms.CharField(required=False, max_length=100, help_text="Connect client_id."),
        "offer_warning_days": forms.IntegerField(
            required=False,
            min_value=1,
            max_value=90,
            help_text=f"The expiring message goes out once an offer ends within this many days of 24 hours "
            f"from now (default {DEFAULT_WARNING_DAYS}).",
        ),
    },
    default_rate_limit=10.0,
    schedules=(
        Schedule(
            name="Read SessionM wallets",
            task="sessionm.scan_offers",
            crontab={"minute": "*/15"},
            description="Reads members' SessionM wallets (a slice per run, within the rate limit) and records "
            "offer-issued and offer-expiring events.",
        ),
        Schedule(
            name="Forget SessionM profiles",
            task="sessionm.forget_profiles",
            crontab={"minute": "*/5"},
            description="Removes the SessionM profiles of members deleted on request (retried while SessionM fails).",
        ),
    ),
    task_queues={"sessionm.*": "sync"},
    client_user_permissions=("view_sessionmoffer", "view_sessionmtransaction", "view_sessionmprofile"),
)
