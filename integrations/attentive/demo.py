"""Attentive in the demo (manage.py seed_demo): the client's sign-up source, which subscriptions need."""

from __future__ import annotations

from integrations.attentive.models import SignUpSource
from integrations.models import Client


def seed_demo(client: Client) -> None:
    """The default sign-up source the simulator accepts (132109, as in the integration guide). Idempotent."""
    SignUpSource.objects.get_or_create(
        client=client, source_id="132109", defaults={"name": "Loyalty sign-up", "is_default": True}
    )
