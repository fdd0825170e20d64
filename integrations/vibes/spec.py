"""Vibes as a vendor: the public API host, API and callback credentials, company key and callback guards."""

import ipaddress

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from integrations.vendor_spec import Schedule, SecretSpec, VendorSpec
from integrations.vibes.api import COMPANY_KEY, COMPANY_KEY_RULE

PRESETS = ("vibes-us", "vibes-eu")


def validate_allowlist(value: str) -> None:
    """Each entry an address, a network (CIDR) or a preset; says which entry is not."""
    for entry in (e.strip() for e in value.replace("\n", ",").split(",")):
        if not entry or entry in PRESETS:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ValidationError(
                f"{entry!r} is not an IP address, a network such as 203.0.113.0/24, or a preset ({', '.join(PRESETS)})."
            ) from exc


SPEC = VendorSpec(
    key="vibes",
    label="Vibes",
    package="integrations.vibes",
    base_urls={"production": "https://public-api.vibescm.com", "staging": "https://public-api.vibescm.com"},
    secrets=(
        SecretSpec("api_username", "API username", help_text="The API user Vibes created for your company."),
        SecretSpec("api_password", "API password", help_text="That API user's password."),
        SecretSpec(
            "callback_password",
            "Callback basic-auth password",
            required=False,
            help_text="Optional extra check on callbacks, with the callback username setting.",
        ),
    ),
    setting_fields={
        # The key is a segment of every person call's path: only a site admin sets it, and only to a key.
        "company_key": forms.CharField(
            max_length=100,
            validators=[
                RegexValidator(
                    f"^{COMPANY_KEY.pattern}\\Z", f"A Vibes company key is made of {COMPANY_KEY_RULE}.", code="invalid"
                )
            ],
            help_text="Your Vibes company key (letters, digits, _ and -). Only a site admin changes it.",
        ),
        "callback_username": forms.CharField(
            required=False, help_text="Set it (and the callback password) to require HTTP Basic on callbacks."
        ),
        "callback_ip_allowlist": forms.CharField(
            required=False,
            validators=[validate_allowlist],
            help_text="Optional: addresses or networks allowed to deliver callbacks, comma-separated; "
            "the presets vibes-us and vibes-eu stand for Vibes' published addresses.",
        ),
    },
    default_rate_limit=50.0,
    keyed_by_mobile=True,
    # The company key picks the path the Basic credentials are sent to (see integrations/vibes/api.py).
    site_admin_settings=("company_key",),
    task_queues={"integrations.match_vibes_persons": "sync"},
    schedules=(
        Schedule(
            name="Match Vibes persons to members",
            task="integrations.match_vibes_persons",
            crontab={"minute": "*/5"},
            description="Attaches Vibes subscriptions of persons the portal did not know to members that appeared "
            "since.",
        ),
    ),
)
