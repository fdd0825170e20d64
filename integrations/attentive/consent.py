"""Attentive's own record of a member's SMS opt-in: its `sms.subscribed` webhook for the member's number."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from integrations.models import WebhookEvent


def sms_opt_in_on_record() -> Q:
    # Attentive's webhook body names the subscriber's number; a delivery is kept as it came.
    subscribed = WebhookEvent.objects.filter(
        connection__client_id=OuterRef("client_id"),
        connection__vendor="attentive",
        event_type="sms.subscribed",
        body__contains=OuterRef("phone"),
    )
    return ~Q(phone="") & Q(Exists(subscribed))
