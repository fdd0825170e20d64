"""Attentive in the demo (manage.py seed_demo): the client's sign-up source, which subscriptions need, a message
template for the loyalty SMS journey, and what to try next."""

from __future__ import annotations

from integrations.attentive.models import SignUpSource
from integrations.models import Client, Connection
from members.models import MessageTemplate


def seed_demo(client: Client) -> None:
    """The default sign-up source the simulator accepts (132109, as in the integration guide) and a points-earned
    SMS. Idempotent."""
    SignUpSource.objects.get_or_create(
        client=client, source_id="132109", defaults={"name": "Loyalty sign-up", "is_default": True}
    )
    MessageTemplate.objects.get_or_create(
        client=client,
        event_type="points_earned",
        defaults={
            "connection": Connection.objects.get(client=client, vendor="attentive"),
            "text": "Hi {first_name}, you earned {points} points at {client_name}. Balance: {points_balance}.",
        },
    )


def demo_next_step(client: Client) -> str:
    return next_step(Connection.objects.get(client=client, vendor="attentive"))


def next_step(attentive: Connection) -> str:
    """The README's Attentive journey, from where the demo's Attentive connection stands."""
    status = Connection.Status
    if attentive.status == status.DRAFT:
        return (
            "Next: Attentive is in the sandbox and still draft: open the client, click 'Activate Attentive' and "
            "'Save and verify' (the sandbox key is stored; /sandbox/ lists every simulator's credentials). Then "
            "subscribe the members and add a loyalty event."
        )
    if attentive.status == status.DISABLED:
        return "Next: Attentive is disabled: return its connection to draft, then activate it again."
    if attentive.status == status.FAILING:
        return f"Next: Attentive is failing ({attentive.last_check_result}): verify its connection again."
    return (
        "Attentive is active: subscribe the members at Attentive and add a loyalty event "
        "(README, 'Trying the Attentive journey (all in the sandbox)')."
    )
