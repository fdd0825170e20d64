"""Parrot's callbacks: `{"id": …, "type": "member.left", "email": …}` when a member leaves Parrot. Stored and
processed by the shared inbound machinery (integrations/inbound.py); applying one opts the member out through the
shared member path, so every other vendor hears of it too."""

from __future__ import annotations

import json

from integrations.inbound import BadDelivery, Delivery, InboundHandler, json_object
from integrations.models import WebhookEvent
from members.models import Member
from members.sync import change_member

Status = WebhookEvent.Status


class ParrotCallbacks(InboundHandler):
    vendor = "parrot"

    def parse(self, content_type: str, body: bytes) -> Delivery:
        payload = json_object(body, "a Parrot callback")
        if payload.get("type") != "member.left" or not payload.get("id") or not payload.get("email"):
            raise BadDelivery("A Parrot callback needs an id, the type member.left and an email.")
        return Delivery(event_id=str(payload["id"]), event_type="member.left")

    def apply(self, event: WebhookEvent) -> tuple[str, str]:
        email = json.loads(event.body)["email"]
        member = Member.objects.filter(client_id=event.connection.client_id, email=email).first()
        if member is None:
            return Status.IGNORED, f"No member {email} at this client."
        change_member(member, opted_in=False)
        return Status.PROCESSED, f"{member} left Parrot: opted out."


HANDLER = ParrotCallbacks()
