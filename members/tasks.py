"""Celery tasks of the loyalty side: thin wrappers around flows, recorded as job runs."""

from __future__ import annotations

from celery import Task, shared_task
from django.utils import timezone

from integrations.job_runs import Counts
from integrations.task_base import PortalTask, run_as_job
from members import sync
from members.imports import run_import
from members.messaging import dispatch_messages
from members.models import MemberImport, SegmentExport
from members.segments import write_export


@shared_task(bind=True, base=PortalTask, name="members.dispatch_loyalty_messages")
def dispatch_loyalty_messages(self: Task, client_id: int | None = None) -> Counts:
    return run_as_job(self, lambda: dispatch_messages(client_id), client_id)


@shared_task(base=PortalTask, name="members.reconcile_member")
def reconcile_member(member_id: int, vendor: str) -> str:
    """Bring one vendor in line with one member (members/sync.py); a repeat finds it in step and does nothing."""
    return sync.reconcile(member_id, vendor).detail


@shared_task(bind=True, base=PortalTask, name="members.reconcile_pending")
def reconcile_pending(self: Task, client_id: int | None = None) -> Counts:
    """The sweep: member changes whose task was lost or whose vendor was failing are sent now."""
    return run_as_job(self, lambda: sync.reconcile_pending(client_id), client_id)


@shared_task(bind=True, base=PortalTask, name="members.backfill_vendor_state")
def backfill_vendor_state(self: Task, connection_id: int) -> Counts:
    """A newly activated connection: record every member its vendor should hold, for the sweep to send."""
    return run_as_job(self, lambda: sync.backfill(connection_id))


@shared_task(bind=True, base=PortalTask, name="members.export_segment")
def export_segment(self: Task, export_id: int) -> Counts:
    """Write a large segment export to a file. Re-running rewrites the same file, so a retry does no harm."""
    export = SegmentExport.objects.select_related("segment__client").get(pk=export_id)
    try:
        return run_as_job(self, lambda: write_export(export), export.segment.client_id)
    except Exception as exc:
        SegmentExport.objects.filter(pk=export_id).update(status=SegmentExport.Status.FAILED, error=str(exc)[:2000])
        raise


@shared_task(bind=True, base=PortalTask, name="members.import_members")
def import_members_file(self: Task, import_id: int) -> Counts:
    """Import a large member CSV in batches from where the last run stopped (members/imports.py): a repeat resumes,
    it never imports a row twice."""
    client_id = MemberImport.objects.values_list("client_id", flat=True).get(pk=import_id)
    try:
        return run_as_job(self, lambda: run_import(import_id), client_id)
    except Exception as exc:
        MemberImport.objects.filter(pk=import_id).update(
            status=MemberImport.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
