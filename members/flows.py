"""Loyalty-side use cases that reach vendors: what follows a member edit, loyalty events arriving."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from integrations.connections import usable
from integrations.models import Client
from members.models import LoyaltyEvent, Member


def member_changed(member: Member, changed_fields: set[str], previous: dict[str, Any]) -> None:
    """What follows an edit of a member from any entry point: each of the client's usable connections whose vendor
    cares (an `on_member_changed` in its flows) queues its own work, e.g. Attentive (un)subscribes on an opt-in
    change and Vibes updates the person on a contact change. `previous` holds the changed fields' old values."""
    if not changed_fields:
        return
    for connection in usable().filter(client_id=member.client_id).select_related("client"):
        on_member_changed = getattr(connection.spec.module("flows"), "on_member_changed", None)
        if on_member_changed is not None:
            on_member_changed(connection, member, changed_fields, previous)


def record_loyalty_event(
    client: Client, member: Member, *, external_id: str, **fields: Any
) -> tuple[LoyaltyEvent, bool]:
    """Store an event once per sender's event id; a repeated delivery returns the stored one unchanged."""
    try:
        with transaction.atomic():
            return LoyaltyEvent.objects.create(client=client, member=member, external_id=external_id, **fields), True
    except IntegrityError:
        return LoyaltyEvent.objects.get(client=client, external_id=external_id), False
