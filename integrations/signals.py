"""The shared code's signal receivers, connected when the app is ready (integrations/apps.py)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from integrations.inbound import forget_inbound_lookups
from integrations.models import Connection


@receiver(post_save, sender=Connection, dispatch_uid="inbound.forget_lookups")
def connection_saved(**kwargs: Any) -> None:
    forget_inbound_lookups()
