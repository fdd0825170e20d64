"""Loyalty-side use cases that reach vendors: a member's opt-in change, loyalty events arriving."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from integrations.models import Client, Connection
from members.models import LoyaltyEvent, Member


def change_opt_in(member: Member, opted_in: bool) -> None:
    """Record the member's choice; after commit, subscribe or unsubscribe them at Attentive if it is active for
    their client. The subscribe flow decides from stored state and eligibility, so it never double-subscribes."""
    from integrations.tasks import attentive_subscribe, attentive_unsubscribe

    Member.objects.filter(pk=member.pk).update(opted_in=opted_in)
    member.opted_in = opted_in
    attentive_on = Connection.objects.filter(
        client_id=member.client_id, vendor="attentive", status=Connection.Status.ACTIVE
    ).exists()
    if attentive_on and member.phone:
        task = attentive_subscribe if opted_in else attentive_unsubscribe
        transaction.on_commit(lambda: task.delay(member.pk))


def record_loyalty_event(
    client: Client, member: Member, *, external_id: str, **fields: Any
) -> tuple[LoyaltyEvent, bool]:
    """Store an event once per sender's event id; a repeated delivery returns the stored one unchanged."""
    try:
        with transaction.atomic():
            return LoyaltyEvent.objects.create(client=client, member=member, external_id=external_id, **fields), True
    except IntegrityError:
        return LoyaltyEvent.objects.get(client=client, external_id=external_id), False


def member_changed(member: Member, changed_fields: set[str], *, previous_opt_in: bool | None = None) -> None:
    """What follows an edit of a member from any entry point: opt-in changes reach Attentive, contact data
    changes reach Vibes (coalesced)."""
    from integrations.vibes.persons import SYNCED_FIELDS, request_person_sync

    if "opted_in" in changed_fields and previous_opt_in != member.opted_in:
        change_opt_in(member, member.opted_in)
    if changed_fields & SYNCED_FIELDS:
        request_person_sync(member)
