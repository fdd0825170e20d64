"""Bazaarvoice as a vendor: Conversations API hosts, the passkey, the e-mail shared secret, and each client's reward
rules for approved reviews (the Annex Cloud "Ratings and Reviews" action)."""

from django import forms

from integrations.vendor_spec import Schedule, SecretSpec, VendorSpec

# The reward rules' defaults: what a client gets until its admin enters its own.
DEFAULT_ACTION_ID = "100"
DEFAULT_POINTS = 50
DEFAULT_REASON = "Ratings and Reviews"
DEFAULT_FIRST_PULL_DAYS = 30
# How far behind the cursor each pull reads again: Bazaarvoice indexes some reviews late, and a review re-moderated
# may carry a LastModeratedTime in the past; either lands behind a cursor that only moves forward.
DEFAULT_LOOK_BACK_HOURS = 72
MAX_LOOK_BACK_HOURS = 24 * 30

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
        "action_id": forms.CharField(
            required=False,
            max_length=50,
            label="Ratings and Reviews action id",
            help_text=f"The Annex Cloud action id of the client's Ratings and Reviews action (blank: "
            f"{DEFAULT_ACTION_ID}).",
        ),
        "points_per_review": forms.IntegerField(
            required=False,
            min_value=1,
            max_value=100_000,
            initial=DEFAULT_POINTS,
            help_text=f"Points a reviewer earns for one approved review (blank: {DEFAULT_POINTS}).",
        ),
        "reason": forms.CharField(
            required=False,
            max_length=200,
            help_text=f"The reason Annex Cloud shows with the points (blank: {DEFAULT_REASON!r}).",
        ),
        "minimum_rating": forms.IntegerField(
            required=False,
            min_value=1,
            max_value=10,
            help_text="Only reviews rated at least this earn points (blank: any rating).",
        ),
        "ratings_only_count": forms.ChoiceField(
            required=False,
            choices=[("yes", "Yes: a rating without text earns points"), ("no", "No: only written reviews")],
            initial="yes",
            label="Ratings-only reviews count",
        ),
        "first_pull_days": forms.IntegerField(
            required=False,
            min_value=1,
            max_value=3650,
            initial=DEFAULT_FIRST_PULL_DAYS,
            help_text="How far back the first pull looks (days before today); later pulls start from the cursor.",
        ),
        "look_back_hours": forms.IntegerField(
            required=False,
            min_value=0,
            max_value=MAX_LOOK_BACK_HOURS,
            initial=DEFAULT_LOOK_BACK_HOURS,
            label="Look-back (hours)",
            help_text="Each pull also reads again this many hours behind its cursor, so reviews Bazaarvoice indexes "
            f"late (or re-moderates into the past) are found; each is still rewarded once (blank: "
            f"{DEFAULT_LOOK_BACK_HOURS}; 0: none).",
        ),
    },
    default_rate_limit=2.0,
    schedules=(
        Schedule(
            name="Pull Bazaarvoice reviews",
            task="bazaarvoice.pull_reviews",
            crontab={"minute": "7"},
            description="Pulls approved reviews moderated before today from each Bazaarvoice connection and awards "
            "the reviewers' Annex Cloud points once per review.",
        ),
    ),
    # Long-running pulls don't hold up member sync.
    task_queues={"bazaarvoice.*": "bulk"},
    client_user_permissions=("view_review",),
)
