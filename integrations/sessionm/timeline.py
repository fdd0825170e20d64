"""What SessionM adds to a member's timeline (members/timeline.py): the offers seen in the member's wallet and the
transactions sent."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from integrations.sessionm.models import SessionMOffer, SessionMTransaction
from members.models import Member
from members.timeline import Entry, admin_url, vendor_label

VENDOR = "sessionm"


def timeline_entries(member: Member, limit: int) -> Iterator[Entry]:
    return chain(offers(member, limit), transactions(member, limit))


def offers(member: Member, limit: int) -> Iterator[Entry]:
    for offer in SessionMOffer.objects.filter(member=member).order_by("-first_seen")[:limit]:
        ends = f"ends {offer.redemption_end_date:%Y-%m-%d}" if offer.redemption_end_date else ""
        yield Entry(
            offer.first_seen,
            "offer",
            vendor_label(VENDOR),
            f"Offer {offer}",
            status="redeemed" if offer.redeemed else "in the wallet",
            detail=ends,
            url=admin_url(offer),
        )


def transactions(member: Member, limit: int) -> Iterator[Entry]:
    for row in SessionMTransaction.objects.filter(member=member).order_by("-created_at")[:limit]:
        yield Entry(
            row.created_at,
            "transaction",
            vendor_label(VENDOR),
            f"Transaction {row.request_id}",
            status=row.status,
            detail=row.detail,
            url=admin_url(row),
        )
