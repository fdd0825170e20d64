"""What Attentive adds to a member's timeline (members/timeline.py): the callbacks that set the member's channels.
Attentive's events have no id; the portal's key starts with the event's time (attentive/webhooks.py), which the
channel's `last_result` ("<type> at <ms>") keeps. The channels themselves are the shared subscriptions' entries."""

from __future__ import annotations

from django.db.models import Q

from members.models import ChannelSubscription, Member

VENDOR = "attentive"


def member_callbacks(member: Member, limit: int) -> Q:
    found = Q(pk__in=[])
    for stamp in event_times(member, limit):
        found |= Q(connection__vendor=VENDOR, event_id__startswith=f"{stamp}:")
    return found


def event_times(member: Member, limit: int) -> list[str]:
    """The times (ms) of the Attentive events that set the member's channels."""
    rows = ChannelSubscription.objects.filter(member=member, vendor=VENDOR)
    results = rows.values_list("last_result", flat=True)
    stamps = (result.rsplit(" at ", 1)[-1] for result in results[:limit] if " at " in result)
    return [stamp for stamp in stamps if stamp.isdigit()]
