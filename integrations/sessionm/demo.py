"""SessionM in the demo (manage.py seed_demo): the messages its events send and a member whose wallet the
simulator (sandbox.py) fills."""

from __future__ import annotations

from integrations.models import Client, Connection
from members.models import EventType, Member, MessageTemplate

DEMO_TEMPLATES = {
    EventType.SIGNED_UP: "Welcome to {client_name}, {first_name}! Your rewards wallet is ready.",
    EventType.OFFER_ISSUED: "{first_name}, a new offer is in your wallet: {offer_name} - {offer_description}",
    EventType.OFFER_EXPIRING: "{first_name}, your offer {offer_name} expires on {expires_on}. Use it soon!",
}


def seed_demo(client: Client) -> None:
    """The three SessionM messages (through the demo's Attentive connection) and a member opted in to SMS, whose
    wallet holds a new and an expiring offer once SessionM is verified and her profile created. Idempotent."""
    attentive = Connection.objects.filter(client=client, vendor="attentive").first()
    if attentive is not None:
        for event_type, text in DEMO_TEMPLATES.items():
            MessageTemplate.objects.get_or_create(
                client=client, event_type=event_type, defaults={"connection": attentive, "text": text}
            )
    Member.objects.get_or_create(
        client=client,
        phone="+17707651790",
        defaults={"first_name": "Amanda", "last_name": "Fries", "email": "amanda.fries@example.com", "opted_in": True},
    )
