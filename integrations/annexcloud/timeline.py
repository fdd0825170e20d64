"""What Annex Cloud adds to a member's timeline (members/timeline.py): the points credited and debited."""

from __future__ import annotations

from collections.abc import Iterator

from members.models import Member, PointsTransaction
from members.timeline import Entry, admin_url, vendor_label


def timeline_entries(member: Member, limit: int) -> Iterator[Entry]:
    for row in PointsTransaction.objects.filter(member=member).order_by("-created_at")[:limit]:
        sign = "+" if row.activity == PointsTransaction.Activity.CREDIT else "-"
        yield Entry(
            row.created_at,
            "points",
            vendor_label("annex_cloud"),
            f"{sign}{row.points} points" + (f" ({row.reason})" if row.reason else ""),
            status=row.get_status_display().lower(),
            detail=row.detail,
            url=admin_url(row),
        )
