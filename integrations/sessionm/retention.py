"""What retention must keep for SessionM: a live offer's "expiring" event. The wallet scan makes that event only
while the offer's link to it is empty, so pruning it early would announce the offer's expiry a second time."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q

from integrations.sessionm.models import SessionMOffer


def loyalty_events_in_use(now: datetime) -> Q:
    live_offer_link = SessionMOffer.objects.filter(expiring_event=OuterRef("pk"), redemption_end_date__gte=now)
    return Q(Exists(live_offer_link))
