"""Bazaarvoice in the demo (manage.py seed_demo): the portal's side of the demo client's connection. The simulator
(sandbox.py) generates the reviews the demo pulls."""

from __future__ import annotations

from integrations.bazaarvoice.sandbox import DEMO_SETTINGS
from integrations.models import Client, Connection


def seed_demo(client: Client) -> None:
    """The demo connection's reward rules (kept if an admin changed them). Its reviews are the served simulator's
    own, generated when it starts (below)."""
    connection = Connection.objects.filter(client=client, vendor="bazaarvoice").first()
    if connection is not None and not connection.settings.get("points_per_review"):
        connection.settings = {**DEMO_SETTINGS, **connection.settings}
        connection.save(update_fields=["settings"])
