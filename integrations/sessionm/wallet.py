"""One SessionM wallet recorded: its offers stored, and the offer-issued and offer-expiring events made exactly once
(deterministic keys), whatever the client's time zone.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from integrations.job_runs import Counts
from integrations.models import Client
from integrations.sessionm.connection import VENDOR
from integrations.sessionm.models import SessionMActivation, SessionMOffer, SessionMProfile
from members.flows import record_loyalty_event
from members.models import EventType, LoyaltyEvent, Member


def record_wallet(member: Member, offers: list[dict[str, Any]], window: int, now: datetime | None = None) -> Counts:
    """Record a member's offers and make each event once: offer_issued when an offer is first seen (and can still be
    used), offer_expiring when an unredeemed offer ends within `window` times 24 hours of now. Keys of the events are
    deterministic, so overlapping runs make each event once."""
    now = now or timezone.now()
    counts: Counter[str] = Counter()
    announce_new = not is_baseline_read(member)
    for raw in offers:
        offer, created = SessionMOffer.objects.get_or_create(
            member=member, offer_id=str(raw["id"])[:100], defaults={"client_id": member.client_id}
        )
        apply_offer_fields(offer, raw, member.client)
        counts["offers"] += 1
        if created and announce_new and is_live(offer, now):
            offer.issued_event = offer_event(member, offer, EventType.OFFER_ISSUED)
            counts["issued"] += 1
        if offer.expiring_event_id is None and expires_within(offer, window, now):
            offer.expiring_event = offer_event(member, offer, EventType.OFFER_EXPIRING)
            counts["expiring"] += 1
        offer.save()
    SessionMProfile.objects.filter(member=member, wallet_first_read_at__isnull=True).update(wallet_first_read_at=now)
    return counts


def is_baseline_read(member: Member) -> bool:
    """The first wallet read of a member who joined before SessionM was activated: what the wallet holds then was
    there before the portal watched it, so it is recorded without offer-issued events (expiring ones still go out
    when due). A member who joined later has every offer announced, the first read's too."""
    first_read = SessionMProfile.objects.filter(member=member, wallet_first_read_at__isnull=True).exists()
    joined_before = SessionMActivation.objects.filter(
        connection__client_id=member.client_id, connection__vendor=VENDOR, first_active_at__gt=member.created_at
    )
    return first_read and joined_before.exists()


def apply_offer_fields(offer: SessionMOffer, raw: dict[str, Any], client: Client) -> None:
    offer.name = str(raw.get("name") or "")[:255]
    offer.description = str(raw.get("description") or "")
    offer.redemption_end_date = parse_end_date(raw.get("redemption_end_date"), client)
    offer.redeemed = bool(raw.get("redeemed") or raw.get("is_redeemed"))


def parse_end_date(value: Any, client: Client) -> datetime | None:
    """SessionM's redemption_end_date: a timestamp (an offset, else UTC) or a date (the end of that day in the
    client's time zone); anything else (missing, malformed, impossible) is no end date."""
    if not isinstance(value, str) or not value:
        return None
    try:
        day = parse_date(value) if len(value) == 10 else None
        moment = None if day is not None else parse_datetime(value)
    except ValueError:
        # Well-formed but impossible ("2026-13-40"): read as no end date, so one bad offer never stops the scan.
        return None
    if day is not None:
        return datetime.combine(day, time.max, tzinfo=client.zone)
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def is_live(offer: SessionMOffer, now: datetime) -> bool:
    return not offer.redeemed and (offer.redemption_end_date is None or offer.redemption_end_date > now)


def time_left(offer: SessionMOffer, now: datetime) -> timedelta | None:
    """Real time from now to the offer's end. Both sides in UTC: Python subtracts two datetimes of the same zone as
    wall-clock times, which would be an hour off across a daylight-saving change."""
    if offer.redemption_end_date is None:
        return None
    return offer.redemption_end_date.astimezone(UTC) - now.astimezone(UTC)


def expires_within(offer: SessionMOffer, window: int, now: datetime) -> bool:
    """Unredeemed, not expired, and its end at most `window` times 24 hours from now: an instant, whatever the client's
    time zone (counting calendar days in that zone announced a 10.5-day offer up to a day early in Tokyo). An end
    date without a time ends at the end of that day in the client's zone (parse_end_date)."""
    left = time_left(offer, now)
    return is_live(offer, now) and left is not None and left <= timedelta(days=window)


def event_key(kind: str, member: Member, offer_id: str) -> str:
    key = f"sessionm-{kind}-{member.pk}-{offer_id}"
    if len(key) <= 100:
        return key
    return f"sessionm-{kind}-{member.pk}-{hashlib.sha256(offer_id.encode()).hexdigest()[:40]}"


def offer_event(member: Member, offer: SessionMOffer, event_type: str) -> LoyaltyEvent:
    client = member.client
    expires_on = client.format_date(client.local_date(offer.redemption_end_date)) if offer.redemption_end_date else ""
    data = {
        "offer_id": offer.offer_id,
        "offer_name": offer.name,
        "offer_description": offer.description,
        "expires_on": expires_on,
    }
    kind = "issued" if event_type == EventType.OFFER_ISSUED else "expiring"
    event, _ = record_loyalty_event(
        client, member, external_id=event_key(kind, member, offer.offer_id), event_type=event_type, data=data
    )
    return event
