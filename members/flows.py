"""Loyalty-side use cases: loyalty events arriving (member changes reach vendors through members/sync.py)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from integrations.models import Client
from members.models import LoyaltyEvent, Member


def record_loyalty_event(
    client: Client, member: Member, *, external_id: str, **fields: Any
) -> tuple[LoyaltyEvent, bool]:
    """Store an event once per sender's event id; a repeated delivery returns the stored one unchanged."""
    try:
        with transaction.atomic():
            return LoyaltyEvent.objects.create(client=client, member=member, external_id=external_id, **fields), True
    except IntegrityError:
        return LoyaltyEvent.objects.get(client=client, external_id=external_id), False
