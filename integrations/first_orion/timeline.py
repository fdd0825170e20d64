"""What First Orion adds to a member's timeline (members/timeline.py): the branded-call pushes planned for the
member, by batch (PushRecipient), with what came of each batch (sent, uncertain, failed, cancelled, ...)."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.translation import ngettext

from integrations.first_orion.models import PushBatch, PushRecipient
from members.models import Member
from members.timeline import Entry, admin_url, vendor_label

VENDOR = "first_orion"


def timeline_entries(member: Member, limit: int) -> Iterator[Entry]:
    rows = (
        PushRecipient.objects.filter(member=member)
        .select_related("batch__push__program_content")
        # A batch's destinations and a push's lists can be large: not read for a line of the timeline.
        .defer("batch__destinations", "batch__push__requested", "batch__push__skipped", "batch__push__warnings")
    )
    for row in rows.order_by("-batch")[:limit]:
        batch = row.batch
        push = batch.push
        yield Entry(
            batch.settled_at or batch.attempted_at or push.created_at,
            "push",
            vendor_label(VENDOR),
            f"Branded call “{push.program_content.name}”",
            status=batch.get_status_display().lower(),
            detail=batch_detail(batch),
            url=admin_url(push),
        )


def batch_detail(batch: PushBatch) -> str:
    destinations = ngettext("%(n)d destination", "%(n)d destinations", batch.size) % {"n": batch.size}
    said = f" First Orion request id {batch.request_id}." if batch.request_id else ""
    return f"{batch} ({destinations}).{said} {batch.error}".strip()
