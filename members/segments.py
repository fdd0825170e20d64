"""Segment use cases: fill a segment (members, e-mail list, saved filter) and export it (pushing one to Annex Cloud
is Annex Cloud's flow: integrations/annexcloud/flows.py)."""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import ngettext

from integrations.queue import enqueue
from members.exports import export_filename, stream_segment_csv
from members.models import Member, Segment, SegmentExport, SegmentMember

# opted_in is the SMS opt-in; loyalty_opted_in Annex Cloud's loyalty opt-in (optInStatus), a different consent.
FILTER_FIELDS = {"opted_in", "loyalty_opted_in", "status", "tier", "joined_from", "joined_to"}


def add_members(segment: Segment, members: QuerySet[Member]) -> int:
    """Add members of the segment's own client (others are ignored); members already in stay once."""
    ids = list(members.filter(client_id=segment.client_id).values_list("pk", flat=True))
    before = segment.links.count()
    SegmentMember.objects.bulk_create(
        [SegmentMember(segment=segment, member_id=pk) for pk in ids], ignore_conflicts=True, batch_size=5000
    )
    return segment.links.count() - before


def add_members_by_emails(segment: Segment, emails: str) -> tuple[int, list[str]]:
    """Annex Cloud's segment `member` field: e-mail addresses separated by commas.
    Returns (added, addresses not found)."""
    wanted = {e.strip().lower() for e in emails.replace("\n", ",").split(",") if e.strip()}
    members = Member.objects.filter(client_id=segment.client_id).alias(email_lower=Lower("email"))
    members = members.filter(email_lower__in=wanted)
    found = {email.lower() for email in members.values_list("email", flat=True)}
    return add_members(segment, members), sorted(wanted - found)


def members_matching(segment: Segment, saved_filter: dict[str, Any]) -> QuerySet[Member]:
    unknown = set(saved_filter) - FILTER_FIELDS
    if unknown:
        raise ValueError(
            f"Unknown filter {ngettext('field', 'fields', len(unknown))}: {', '.join(sorted(unknown))}. "
            f"Use {', '.join(sorted(FILTER_FIELDS))}."
        )
    members = Member.objects.filter(client_id=segment.client_id)
    if "opted_in" in saved_filter:
        members = members.filter(opted_in=bool(saved_filter["opted_in"]))
    if "loyalty_opted_in" in saved_filter:
        members = members.filter(loyalty_opted_in=bool(saved_filter["loyalty_opted_in"]))
    if saved_filter.get("status"):
        members = members.filter(status=saved_filter["status"])
    if saved_filter.get("tier"):
        members = members.filter(tier=saved_filter["tier"])
    if saved_filter.get("joined_from"):
        members = members.filter(created_at__date__gte=saved_filter["joined_from"])
    if saved_filter.get("joined_to"):
        members = members.filter(created_at__date__lte=saved_filter["joined_to"])
    return members


def apply_saved_filter(segment: Segment) -> int:
    return add_members(segment, members_matching(segment, segment.saved_filter))


def write_export(export: SegmentExport) -> dict[str, int]:
    """The background export: the same stream as a download, written to a file chunk by chunk."""
    SegmentExport.objects.filter(pk=export.pk).update(status=SegmentExport.Status.RUNNING)
    segment = export.segment
    content = ContentFile(b"")
    name = export_filename(segment)
    export.file.save(name, content, save=False)
    with export.file.open("wb") as handle:
        for chunk in stream_segment_csv(segment):
            handle.write(chunk)
    export.rows = segment.links.count()
    export.status = SegmentExport.Status.READY
    export.finished_at = timezone.now()
    export.save(update_fields=["file", "rows", "status", "finished_at"])
    return {"rows": export.rows}


def request_background_export(segment: Segment) -> SegmentExport:
    """Queue a file export after commit; the job marks it ready (or failed, with the error)."""
    export = SegmentExport.objects.create(segment=segment)
    enqueue("members.export_segment", export.pk)
    return export
