"""Attentive as a vendor: its API host, the private app key, legacy messages token and webhook signing key, its
settings."""

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
        SecretSpec(
            "webhook_signing_key",
            "Webhook signing key",
            required=False,
            help_text="The signing key of the webhook created for this client in Attentive (sms.subscribed, "
            "sms.unsubscribed, email.unsubscribed, sent to the connection's webhook URL); without it every "
            "webhook is refused.",
        ),
    ),
    setting_fields={
        # A choice among Attentive's documented message endpoints, never free text: a path is where the legacy
        # token goes, and no one but a site admin decides that (site_admin_settings below).
        "messages_path": forms.ChoiceField(
            required=False,
            choices=[
                ("/v1/subscriptions/messages", "/v1/subscriptions/messages (the integration guide's)"),
                ("/v1/text/send", "/v1/text/send (public API)"),
                ("/1/messages", "/1/messages (legacy)"),
            ],
            initial="/v1/subscriptions/messages",
            help_text="Which of Attentive's documented message endpoints this account uses.",
        ),
    },
    # The endpoint the legacy token goes to: a site admin's choice, like the base URL (client users see it).
    site_admin_settings=("messages_path",),
    default_rate_limit=10.0,
    sends_messages=True,
    keyed_by_mobile=True,
    client_user_permissions=("view_signupsource",),
    task_queues={"integrations.attentive_*": "sync"},
)
