"""What Vibes adds to a member's timeline (members/timeline.py): the member's list subscriptions, and the callbacks
that set them — found by their event id (VibesListSubscription.last_event_id; index `webhookevent_event_id`)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Q

from integrations.vibes.models import VibesListSubscription
from members.models import Member
from members.timeline import Entry, admin_url, vendor_label

VENDOR = "vibes"


def timeline_entries(member: Member, limit: int) -> Iterator[Entry]:
    for row in VibesListSubscription.objects.filter(member=member).order_by("-last_event_date")[:limit]:
        detail = f"Opted out ({row.opt_out_reason})" if row.opt_out_reason else ""
        yield Entry(
            row.last_event_date,
            "subscription",
            vendor_label(VENDOR),
            f"List {row.list_id}",
            status=row.get_state_display().lower(),
            detail=detail,
            url=admin_url(member),
        )


def member_callbacks(member: Member, limit: int) -> Q:
    event_ids = list(
        VibesListSubscription.objects.filter(member=member)
        .exclude(last_event_id="")
        .order_by("-last_event_date")
        .values_list("last_event_id", flat=True)[:limit]
    )
    return Q(connection__vendor=VENDOR, event_id__in=event_ids) if event_ids else Q(pk__in=[])
