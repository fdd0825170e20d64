"""What the portal itself records: vendor calls, job runs and inbound webhook events (read-only, reprocessable)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html

from integrations import inbound
from integrations.admin.base import ClientFilter, ConnectionClientFilter, ReadOnlyAdmin, clipped, clipped_as
from integrations.models import JobRun, VendorCall, WebhookEvent
from integrations.queue import task_named
from integrations.tenancy import is_site_admin
from portal.admin_paging import LargeTablePaginator
from portal.admin_replica import ReplicaChangeListMixin


@admin.register(VendorCall)
class VendorCallAdmin(ReplicaChangeListMixin, ReadOnlyAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    client_path = "connection__client"
    # Status, error and latency first: what someone scanning calls looks for; the URL is clipped (whole on hover).
    list_display = [
        "created_at",
        "status_code",
        "error_type",
        "latency_ms",
        "connection",
        "method",
        "short_url",
        "attempt",
    ]
    list_filter = [ConnectionClientFilter, "connection__vendor", "error_type", "method", "status_code"]
    list_select_related = ["connection__client"]
    search_fields = ["url", "error"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "connection", "created_at", "method", "url", "attempt", "request_headers", "request_body", "status_code",
        "response_body", "latency_ms", "error_type", "error",
    ]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[VendorCall]:
        return super().get_queryset(request).defer("connection__secrets")

    @admin.display(description="path", ordering="url")
    def short_url(self, call: VendorCall) -> str:
        """The path (the connection column already says which vendor's host); the whole URL on hover."""
        parts = urlsplit(call.url)
        return clipped_as(call.url, parts.path + (f"?{parts.query}" if parts.query else ""))


@admin.register(JobRun)
class JobRunAdmin(ReplicaChangeListMixin, ReadOnlyAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    list_display = ["job_name", "outcome", "client", "started_at", "finished_at", "counts"]
    list_filter = ["outcome", "job", ClientFilter]
    list_select_related = ["client"]
    search_fields = ["job", "task_id", "error"]
    date_hierarchy = "started_at"
    readonly_fields = [
        *("job_name", "job", "client", "task_id"),
        *("started_at", "finished_at", "outcome", "progress", "counts", "error"),
    ]
    actions = ["run_now"]

    class Media:
        js = ["integrations/job_progress.js"]

    @admin.display(description="progress")
    def progress(self, run: JobRun) -> str:
        return render_to_string("admin/includes/job_progress.html", {"run": run})

    @admin.display(description="job", ordering="job")
    def job_name(self, run: JobRun) -> str:
        return run.job_label

    @admin.display(description="counts")
    def counts(self, run: JobRun) -> str:
        return run.counts_in_words

    @admin.action(description="Run the selected jobs again now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        if not is_site_admin(request.user):
            self.message_user(request, "Only site admins can run jobs.", messages.ERROR)
            return
        queued = set()
        for run in queryset:
            key = (run.job, run.client_id)
            if key not in queued:
                task_named(run.job).apply_async(kwargs={"client_id": run.client_id} if run.client_id else {})
                queued.add(key)
        self.message_user(
            request, f"Queued {len(queued)} job(s); new runs appear in this list when the worker picks them up."
        )


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReplicaChangeListMixin, ReadOnlyAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    client_path = "connection__client"
    list_display = ["received_at", "status", "outcome", "connection", "event_type", "event_id"]
    list_filter = [ConnectionClientFilter, "connection__vendor", "event_type", "status"]
    list_select_related = ["connection__client"]
    search_fields = ["event_id", "body"]
    date_hierarchy = "received_at"
    fields = [
        "connection", "received_at", "remote_addr", "event_type", "event_id", "status", "processed_at",
        "outcome", "pretty_body", "headers", "traceback",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["reprocess"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEvent]:
        return super().get_queryset(request).defer("connection__secrets")

    @admin.display(description="outcome")
    def outcome(self, event: WebhookEvent) -> str:
        """What applying did, or why the delivery was refused or failed."""
        return clipped(event.error, 80)

    @admin.display(description="body as received")
    def pretty_body(self, event: WebhookEvent) -> str:
        try:
            text = json.dumps(json.loads(event.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = event.body
        # A refused body may hold an escaped lone surrogate ("\ud800"), which no page can be encoded with.
        text = text.encode("utf-8", "replace").decode()
        return format_html('<pre class="received-body">{}</pre>', text)

    @admin.action(description="Reprocess the selected failed events")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        if not is_site_admin(request.user):
            self.message_user(request, "Only site admins can reprocess events.", messages.ERROR)
            return
        counts = inbound.reprocess(queryset)
        level = messages.SUCCESS if not counts["failed"] else messages.WARNING
        self.message_user(
            request, f"Reprocessed: {counts['processed']} applied, {counts['failed']} failed again.", level
        )
