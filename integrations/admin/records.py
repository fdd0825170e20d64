"""What the portal itself records: vendor calls, job runs and inbound webhook events (read-only, reprocessable)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.translation import ngettext

from integrations import inbound
from integrations.admin.base import ClientFilter, ConnectionClientFilter, ReadOnlyAdmin, clipped, clipped_as
from integrations.http import EXPECTED_KINDS, FAILED, NOT_FOUND, OK, REFUSED, VendorError
from integrations.models import Connection, JobRun, VendorCall, WebhookEvent
from integrations.queue import task_named
from integrations.tenancy import is_site_admin, scope_to_clients
from integrations.vendors import VENDOR_CHOICES
from portal.admin_filters import fixed_choices_filter, indexed_values_filter, since_filter
from portal.admin_paging import LargeTablePaginator
from portal.admin_replica import ReplicaChangeListMixin
from portal.keyset import KeysetPagingMixin

HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def error_kinds() -> list[str]:
    """Every `error_type` a call row can hold: the kinds of VendorError and its subclasses, and the two kinds of an
    answer the caller expected (integrations/http.py ExpectedAnswer)."""
    found, pending = set(EXPECTED_KINDS), [VendorError]
    while pending:
        error = pending.pop()
        found.add(error.kind)
        pending.extend(error.__subclasses__())
    return sorted(found)


class StatusClassFilter(admin.SimpleListFilter):
    """The answer's class rather than each code: a range the `vendorcall_failed` index serves for failures."""

    title = "status"
    parameter_name = "status_class"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("2", "2xx"), ("3", "3xx"), ("4", "4xx"), ("5", "5xx"), ("none", "no answer")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[VendorCall]) -> QuerySet[VendorCall]:
        value = self.value()
        if value == "none":
            return queryset.filter(status_code__isnull=True)
        if value in {"2", "3", "4", "5"}:
            low = int(value) * 100
            return queryset.filter(status_code__gte=low, status_code__lt=low + 100)
        return queryset


class CallOutcomeFilter(admin.SimpleListFilter):
    """The outcome a call is counted under on the dashboard (integrations/http.py CALL_OUTCOMES), from its row: no
    error is ok, an expected answer has its own error_type, any other error is a failure. Failed and uncertain are
    one choice: the row does not keep whether a failure was uncertain (the dashboard's "failed" figure is both)."""

    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            (OK, "ok"),
            (NOT_FOUND, "not found (expected)"),
            (REFUSED, "refused (expected)"),
            (FAILED, "failed or uncertain"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[VendorCall]) -> QuerySet[VendorCall]:
        expected = {outcome: kind for kind, outcome in EXPECTED_KINDS.items()}
        value = self.value()
        if value == OK:
            return queryset.filter(error_type="")
        if value in expected:
            return queryset.filter(error_type=expected[value])
        if value == FAILED:
            return queryset.exclude(error_type="").exclude(error_type__in=list(EXPECTED_KINDS))
        return queryset


def connection_ids(connections: QuerySet[Connection]) -> list[int]:
    """Connections are a small table: a filter on a vendor or a client becomes `connection_id IN (…)`, which the call
    list reads per connection from its connection index (portal/keyset.py, keyset_partition), and an empty list when
    none matches (the call table is not read at all)."""
    return list(connections.values_list("pk", flat=True))


class CallVendorFilter(admin.SimpleListFilter):
    """The vendor, resolved to its connections' ids (the parameter is Django's own, so older links still work). For
    any log with a `connection` (vendor calls, webhook events)."""

    title = "vendor"
    parameter_name = "connection__vendor__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in VENDOR_CHOICES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if not self.value():
            return queryset
        return queryset.filter(connection_id__in=connection_ids(Connection.objects.filter(vendor=self.value())))


class CallClientFilter(ConnectionClientFilter):
    """The client, resolved to its connections' ids (vendor calls, webhook events)."""

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        client_id = self.value()
        if not client_id:
            return queryset
        return queryset.filter(connection_id__in=connection_ids(Connection.objects.filter(client_id=client_id)))


class ConnectionScopedAdmin(ReadOnlyAdmin):
    """A log of connections (vendor calls, webhook events): a client user's rows are their connections' rows, named
    by id (`connection_id IN (…)`, no join to the client in the WHERE), so the list reads per connection from its
    (connection, time) index (portal/keyset.py, keyset_partition)."""

    client_path = "connection__client"

    def scope_to_user(self, queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
        if is_site_admin(user):
            return queryset
        return queryset.filter(connection_id__in=connection_ids(scope_to_clients(Connection.objects.all(), user)))


def call_search(term: str) -> Q:
    """What the vendor calls' search box finds, on indexed columns only (never the bodies or the URL, a scan of
    the whole log): a number is a call's id or an answer's status; a word is a vendor or a client (its slug or name),
    resolved here to their connections' ids, or an error kind (the failures' index, `vendorcall_failures`). Never an
    OR across a join: the database could then use no index for the page's order."""
    if term.isdigit():
        number = int(term)
        return Q(pk=number) | Q(status_code=number) if number < 1000 else Q(pk=number)
    word = term.lower()
    matching = connection_ids(
        Connection.objects.filter(Q(vendor=word) | Q(client__slug=word) | Q(client__name__iexact=term))
    )
    if not matching:
        return Q(error_type=word)
    if word in error_kinds():  # a client named like an error kind: both, each on its own index
        return Q(connection_id__in=matching) | Q(error_type=word)
    return Q(connection_id__in=matching)


def webhook_search(term: str) -> Q:
    """A delivery by its id here, or by the vendor's event or delivery id (exact: indexed)."""
    found = Q(event_id=term)
    return found | Q(pk=int(term)) if term.isdigit() else found


def job_run_search(term: str) -> Q:
    """A run by its id, its Celery task id or its job's name (exact: indexed)."""
    found = Q(task_id=term) | Q(job=term)
    return found | Q(pk=int(term)) if term.isdigit() else found


@admin.register(VendorCall)
class VendorCallAdmin(KeysetPagingMixin, ReplicaChangeListMixin, ConnectionScopedAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    keyset_field = "created_at"  # newest first, "Older" pages by (created_at, id): portal/keyset.py
    # A vendor, a client, a connection or a client user's scope: read per connection from its connection index.
    keyset_partition = "connection_id"
    # A status or an error filter is searched a stretch at a time (portal/keyset.py): the failures' partial index
    # answers "failed" at once, but a rare kind ("auth") would walk every failure of the log, and per connection
    # nothing answers it. A stretch holds thousands of failures, so a broad filter still fills its page.

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
    # Each filter's choices cost no scan of the log, and each failure filter has a partial index (models.py).
    list_filter = [
        CallClientFilter,
        CallVendorFilter,
        CallOutcomeFilter,
        since_filter("created_at"),
        fixed_choices_filter("error_type", "error", error_kinds),
        fixed_choices_filter("method", "method", lambda: HTTP_METHODS),
        StatusClassFilter,
    ]
    list_select_related = ["connection__client"]
    search_fields = ["=id"]  # shows the box; get_search_results says what it finds
    search_help_text = "A call's id, an HTTP status (e.g. 500), a vendor, a client or an error kind (e.g. timeout)."
    readonly_fields = [
        "connection", "created_at", "method", "url", "attempt", "request_headers", "request_body", "status_code",
        "response_body", "latency_ms", "error_type", "error",
    ]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[VendorCall]:
        return super().get_queryset(request).defer("connection__secrets")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The vendor filter keeps the parameter Django's own filter had, so links made before still open.
        return lookup == CallVendorFilter.parameter_name or super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[VendorCall], search_term: str
    ) -> tuple[QuerySet[VendorCall], bool]:
        term = search_term.strip()
        return (queryset.filter(call_search(term)) if term else queryset), False

    @admin.display(description="path")
    def short_url(self, call: VendorCall) -> str:
        """The path (the connection column already says which vendor's host); the whole URL on hover."""
        parts = urlsplit(call.url)
        return clipped_as(call.url, parts.path + (f"?{parts.query}" if parts.query else ""))


@admin.register(JobRun)
class JobRunAdmin(KeysetPagingMixin, ReplicaChangeListMixin, ReadOnlyAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    keyset_field = "started_at"  # newest first, "Older" pages by (started_at, id): portal/keyset.py
    keyset_indexed = ("outcome", "job")  # (outcome, started_at) and the job's own index: a short table besides
    list_display = ["job_name", "outcome", "client", "started_at", "finished_at", "counts"]
    list_filter = ["outcome", indexed_values_filter("job", "job"), ClientFilter]
    list_select_related = ["client"]
    search_fields = ["=id"]  # shows the box; get_search_results says what it finds
    search_help_text = "A run's id, its task id, or a job's name (e.g. members.sync_members)."
    readonly_fields = [
        *("job_name", "job", "client", "task_id"),
        *("started_at", "finished_at", "outcome", "progress", "counts", "error"),
    ]
    actions = ["run_now"]

    class Media:
        js = ["integrations/job_progress.js"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[JobRun], search_term: str
    ) -> tuple[QuerySet[JobRun], bool]:
        term = search_term.strip()
        return (queryset.filter(job_run_search(term)) if term else queryset), False

    @admin.display(description="progress")
    def progress(self, run: JobRun) -> str:
        return render_to_string("admin/includes/job_progress.html", {"run": run})

    @admin.display(description="job")
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
            request,
            f"Queued {len(queued)} {ngettext('job', 'jobs', len(queued))}; new runs appear in this list when the "
            "worker picks them up.",
        )


@admin.register(WebhookEvent)
class WebhookEventAdmin(KeysetPagingMixin, ReplicaChangeListMixin, ConnectionScopedAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    keyset_field = "received_at"  # newest first, "Older" pages by (received_at, id): portal/keyset.py
    # A vendor, a client or a client user's scope: read per connection from `webhookevent_connection_time`.
    keyset_partition = "connection_id"

    def keyset_indexed_fields(self, *, partitioned: bool) -> tuple[str, ...]:
        """From the time index alone, a status or an event type is read newest first from its own (status, time)
        or (event type, time) index; per connection, a bounded stretch (portal/keyset.py)."""
        return () if partitioned else ("status", "event_type", "event_id")

    list_display = ["received_at", "status", "outcome", "connection", "event_type", "event_id"]
    list_filter = [
        CallClientFilter,
        since_filter("received_at", "received"),
        CallVendorFilter,
        indexed_values_filter("event_type", "event type"),
        "status",
    ]
    list_select_related = ["connection__client"]
    search_fields = ["=id"]  # shows the box; get_search_results says what it finds
    search_help_text = "A delivery's id here, or the vendor's event id (exact)."
    fields = readonly_fields = (
        "connection", "received_at", "remote_addr", "event_type", "event_id", "status", "processed_at",
        "outcome", "pretty_body", "pretty_headers", "traceback",
    )  # fmt: skip
    actions = ["reprocess"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEvent]:
        return super().get_queryset(request).defer("connection__secrets")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The vendor filter keeps the parameter Django's own filter had, so links made before still open.
        return lookup == CallVendorFilter.parameter_name or super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[WebhookEvent], search_term: str
    ) -> tuple[QuerySet[WebhookEvent], bool]:
        term = search_term.strip()
        return (queryset.filter(webhook_search(term)) if term else queryset), False

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

    @admin.display(description="headers as received")
    def pretty_headers(self, event: WebhookEvent) -> str:
        """Shown like the body, one header a line, rather than the stored JSON on one line."""
        text = json.dumps(event.headers, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre class="received-body">{}</pre>', text.encode("utf-8", "replace").decode())

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
