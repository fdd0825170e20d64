"""What Bazaarvoice adds to a member's timeline (members/timeline.py): the member's reviews and what each earned."""

from __future__ import annotations

from collections.abc import Iterator

from integrations.bazaarvoice.models import Review
from members.models import Member
from members.timeline import Entry, admin_url, vendor_label


def timeline_entries(member: Member, limit: int) -> Iterator[Entry]:
    for review in Review.objects.filter(member=member).order_by("-moderated_at")[:limit]:
        rating = f"{review.rating}★ " if review.rating else ""
        yield Entry(
            review.moderated_at,
            "review",
            vendor_label("bazaarvoice"),
            f"Review {rating}of {review.product_id or 'a product'}",
            status=review.get_outcome_display(),
            detail=review.detail,
            url=admin_url(review),
        )
