"""SessionM's welcome: one `signed_up` event per member who joins once SessionM is usable for the client. The
message job (members/messaging.py) sends it through the client's templates.
"""

from __future__ import annotations

from django.utils import timezone

from integrations.connections import USABLE_STATUSES
from integrations.models import Connection
from integrations.sessionm.connection import VENDOR
from integrations.sessionm.models import SessionMActivation
from members.flows import record_loyalty_event
from members.models import EventType, LoyaltyEvent, Member


def note_first_active(connection: Connection) -> None:
    """Note when a SessionM connection is first usable (verified, or saved active): the welcome's starting line."""
    if connection.vendor == VENDOR and connection.status in USABLE_STATUSES:
        SessionMActivation.objects.get_or_create(connection=connection, defaults={"first_active_at": timezone.now()})


def record_sign_up(member: Member) -> None:
    """One `signed_up` event per member who joined while SessionM is usable for the client and after it was first
    activated: members imported while the connection was a draft, or before it existed, are not welcomed when it is
    activated, nor members found through a vendor. Re-import, refresh and re-save find the event stored and add
    nothing."""
    if member.found_through:
        return  # found at a vendor (a Bazaarvoice reviewer at Annex Cloud): an existing member, not a sign-up
    key = f"signed-up-{member.pk}"
    joined_after = SessionMActivation.objects.filter(
        connection__client_id=member.client_id,
        connection__vendor=VENDOR,
        connection__status__in=USABLE_STATUSES,
        first_active_at__lte=member.created_at,
    )
    if LoyaltyEvent.objects.filter(client_id=member.client_id, external_id=key).exists() or not joined_after.exists():
        return
    record_loyalty_event(
        member.client, member, external_id=key, event_type=EventType.SIGNED_UP, occurred_at=member.created_at
    )
