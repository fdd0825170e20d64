"""Members (with each vendor's member actions and inlines), loyalty events, and the member CSV import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from integrations.admin.base import ClientFilter, ClientScopedAdmin, collected
from integrations.tenancy import scope_to_clients, visible_clients
from integrations.vendors import VENDORS
from members import changes, imports, segments, sync, timeline
from members.imports import ImportFileError
from members.models import (
    ChannelSubscription,
    LoyaltyEvent,
    Member,
    MemberImport,
    MemberVendorState,
    Segment,
    annex_cloud_id_holder,
    annex_cloud_id_taken,
)
from members.phones import InvalidPhone, numbers_for, to_e164
from portal import zones
from portal.admin_filters import indexed_values_filter
from portal.admin_paging import LargeTablePaginator
from portal.admin_replica import ReplicaChangeListMixin

if TYPE_CHECKING:
    from integrations.models import Client


class VendorStateInline(admin.TabularInline):
    """On a member's page: each vendor's state, and why it is not in step."""

    model = MemberVendorState
    extra = 0
    can_delete = False
    verbose_name = "state at a vendor"
    verbose_name_plural = "state at each vendor"
    fields = readonly_fields = ("vendor_label", "status", "detail", "changed_at", "confirmed_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="vendor")
    def vendor_label(self, state: MemberVendorState) -> str:
        return VENDORS[state.vendor].label if state.vendor in VENDORS else state.vendor


class MemberForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = [
            "client", "annex_cloud_id", "email", "phone", "first_name", "last_name", "zip_code",
            "opted_in", "status", "tier", "points",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns, typed as a dict
        client = cleaned.get("client") or getattr(self.instance, "client", None)
        if cleaned.get("phone") and client is not None:
            try:
                cleaned["phone"] = to_e164(cleaned["phone"], client.default_region)
            except InvalidPhone as exc:
                self.add_error("phone", str(exc))
        if cleaned.get("annex_cloud_id") and client is not None:
            holder = annex_cloud_id_holder(client.pk, cleaned["annex_cloud_id"], exclude_pk=self.instance.pk)
            if holder is not None:
                self.add_error("annex_cloud_id", annex_cloud_id_taken(holder))
        return cleaned


def member_search(term: str, regions: set[str]) -> Q:
    """What the members' search box finds, on indexed columns only (a contains-search scans millions of rows): an
    e-mail in any case (`member_email_lower`), a mobile number however typed, or an Annex Cloud id."""
    found = Q(email_lower=term.lower()) | Q(annex_cloud_id=term)
    if numbers := numbers_for(term, regions):
        found |= Q(phone__in=numbers)
    return found


class MemberImportForm(forms.Form):
    client: forms.ModelChoiceField[Client] = forms.ModelChoiceField(queryset=None)
    file = forms.FileField(help_text="UTF-8 CSV with a header row (in Excel: Save As, CSV UTF-8).")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("forms.ModelChoiceField[Client]", self.fields["client"]).queryset = visible_clients(user)
        self.rows = 0

    def clean_file(self) -> UploadedFile:
        """The whole file is read here, importing nothing: one that is not UTF-8 CSV is a form error in words."""
        upload = self.cleaned_data["file"]
        limit = settings.MEMBER_IMPORT_MAX_BYTES
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file has {upload.size / 2**20:.1f} MB, more than {limit / 2**20:.0f} MB: split it and upload "
                "the parts."
            )
        try:
            self.rows = imports.check_upload(upload)
        except ImportFileError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return upload


class SubscriptionInline(admin.TabularInline):
    model = ChannelSubscription
    extra = 0
    can_delete = False
    readonly_fields = ["vendor", "type", "channel", "state", "last_result", "updated_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# A chip says a vendor's state in a word or two, so a row of chips stays a line or two; its tooltip has the reason
# ("Not sent by the portal: no mobile number.").
CHIP_WORDS: dict[str, str] = {
    MemberVendorState.Status.DEFERRED: "deferred",
    MemberVendorState.Status.REJECTED: "rejected",
    MemberVendorState.Status.NOT_SENT: "not sent",
}


@admin.register(Member)
class MemberAdmin(ReplicaChangeListMixin, ClientScopedAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    form = MemberForm
    # Who, and how to reach them (phone and e-mail, what support searches by), before their standing.
    list_display = [
        "member", "client", "phone", "email", "opted_in", "loyalty", "vendor_chips", "status", "tier", "points",
    ]  # fmt: skip
    list_display_links = None  # `member` holds both links: the member's page and the timeline
    list_filter = [
        ClientFilter,
        "opted_in",
        "loyalty_opted_in",
        "known_to_annex_cloud",
        "status",
        indexed_values_filter("tier", "tier"),  # its choices from `member_tier_list_order`, not a scan
    ]
    # What Annex Cloud said of the member at the last look-up: its own, shown here, changed there.
    readonly_fields = [
        "loyalty_opted_in", "known_to_annex_cloud", "annex_cloud_read_at", "annex_cloud_note", "found_through",
    ]  # fmt: skip
    search_fields = ["=id"]  # shows the box; get_search_results says what it finds
    search_help_text = "An e-mail (any case), a mobile number, or an Annex Cloud id — exact."
    # By client id rather than the client (which would sort by its name, through a join): `member_list_order`.
    ordering = ["client_id", "last_name", "first_name", "pk"]
    list_select_related = ["client"]
    change_list_template = "admin/members/member/change_list.html"

    # A property, so the vendors' actions are collected when the list is shown; ModelAdmin declares `actions` as a
    # class attribute, which a property overrides only at run time.
    @property
    def actions(self) -> list[Any]:  # type: ignore[override]
        """The member's own actions, then each vendor's (subscribe at Attentive, send to Vibes, ...)."""
        return ["add_to_segment", *collected("member_actions")]

    def get_inlines(self, request: HttpRequest, obj: Member | None) -> list[Any]:
        if obj is None:  # a new member has no vendor state and no vendor records yet
            return [SubscriptionInline]
        return [VendorStateInline, SubscriptionInline, *collected("member_inlines")]

    def get_urls(self) -> list[Any]:
        import_view = path("import/", self.admin_site.admin_view(self.import_view), name="members_member_import")
        errors_view = path(
            "import/<int:pk>/errors/",
            self.admin_site.admin_view(self.import_errors_view),
            name="members_member_import_errors",
        )
        timeline_view = path(
            "<path:object_id>/timeline/",
            self.admin_site.admin_view(self.timeline_view),
            name="members_member_timeline",
        )
        return [import_view, errors_view, timeline_view, *super().get_urls()]

    @admin.display(description="loyalty", boolean=True, ordering="loyalty_opted_in")
    def loyalty(self, member: Member) -> bool | None:
        """The loyalty opt-in under a short heading: the field's own name ("loyalty opt-in (Annex Cloud)") made the
        list wider than the window."""
        return member.loyalty_opted_in

    @admin.display(description="member", ordering="last_name")
    def member(self, member: Member) -> str:
        """The member's page and, under it, the timeline: in one column, so the list still fits the window."""
        return format_html(
            '<a href="{}">{}</a><br><a class="timeline-link" href="{}">Timeline</a>',
            reverse("admin:members_member_change", args=[member.pk]),
            member,
            reverse("admin:members_member_timeline", args=[member.pk]),
        )

    def timeline_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        """Everything that happened to the member across vendors, newest first, in the viewer's time zone."""
        member = self.get_object(request, object_id)
        if member is None or not self.has_view_or_change_permission(request, member):
            raise Http404("No such member.")
        zone = zones.request_zone(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": member,
            "title": f"Timeline of {member}",
            # Formatted here: the template's date filter would turn them back into the server's zone.
            "entries": [(zones.local_time(entry.at, zone), entry) for entry in timeline.timeline(member)],
            "zone": zone.key,
            "per_source": timeline.PER_SOURCE,
        }
        return TemplateResponse(request, "admin/members/member/timeline.html", context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV of members; bad rows are listed with their line numbers, good rows are kept. A large file
        is imported by a job: it is listed below the form with its progress, then its error report."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = MemberImportForm(request.POST or None, request.FILES or None, user=request.user)
        report_lines: list[str] = []
        if request.method == "POST" and form.is_valid():
            client, upload = form.cleaned_data["client"], form.cleaned_data["file"]
            if imports.runs_in_background(form.rows):
                imports.queue_import(client, upload, form.rows, request.user)
                self.message_user(
                    request,
                    f"{upload.name}: {form.rows:,} rows are being imported in the background. Their progress, then "
                    "the lines not imported, are listed below.",
                )
                return HttpResponseRedirect(request.path)
            report = imports.import_members(client, upload, by=imports.import_label(request.user, upload.name))
            report_lines = list(imports.report_lines(report))
            self.message_user(request, report_lines[0], messages.WARNING if report.failed else messages.SUCCESS)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import members from CSV",
            "form": form,
            "report_lines": report_lines[1:],
            "columns": sorted(imports.COLUMNS),
            "sync_max_rows": settings.MEMBER_IMPORT_SYNC_MAX_ROWS,
            "background_imports": self.background_imports(request)[:20],
        }
        return TemplateResponse(request, "admin/members/member/import.html", context)

    def background_imports(self, request: HttpRequest) -> QuerySet[MemberImport]:
        imports_ = MemberImport.objects.select_related("client", "uploaded_by", "job_run")
        return scope_to_clients(imports_, request.user)

    def import_errors_view(self, request: HttpRequest, pk: int) -> StreamingHttpResponse:
        """The error report of a finished background import: line, reason."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        member_import = get_object_or_404(self.background_imports(request), pk=pk, status=MemberImport.Status.DONE)
        response = StreamingHttpResponse(imports.error_report(member_import), content_type="text/csv; charset=utf-8")
        filename = f"{member_import.client.slug}-import-{member_import.pk}-errors.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Add to a segment…", permissions=["change"])
    def add_to_segment(self, request: HttpRequest, queryset: QuerySet[Member]) -> TemplateResponse | None:
        client_ids = set(queryset.values_list("client_id", flat=True))
        choices = scope_to_clients(Segment.objects.filter(client_id__in=client_ids), request.user)
        if "segment" in request.POST:
            chosen = request.POST["segment"]
            segment = choices.filter(pk=chosen).first() if chosen.isdigit() else None
            if segment is None:
                self.message_user(request, "Choose a segment of the members' client.", messages.ERROR)
                return None
            added = segments.add_members(segment, queryset)
            self.message_user(request, f"Added {added} {ngettext('member', 'members', added)} to {segment}.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add members to a segment",
            "segments": choices,
            "pks": list(queryset.values_list("pk", flat=True)),
            "action": request.POST["action"],
        }
        return TemplateResponse(request, "admin/members/member/add_to_segment.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return super().get_queryset(request).prefetch_related("subscriptions", "vendor_states")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Member], search_term: str
    ) -> tuple[QuerySet[Member], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        regions = set(visible_clients(request.user).values_list("default_region", flat=True).distinct()[:20])
        return queryset.alias(email_lower=Lower("email")).filter(member_search(term, regions)), False

    @admin.display(description="at vendors")
    def vendor_chips(self, member: Member) -> str:
        """One chip per vendor that should hold the member: in sync, pending, deferred or rejected (why on hover)."""
        chips = [
            format_html(
                '<span class="chip chip-{}" title="{}">{}: {}</span>',
                state.status,
                state.detail or state.get_status_display(),
                VENDORS[state.vendor].label if state.vendor in VENDORS else state.vendor,
                CHIP_WORDS.get(state.status, state.get_status_display()),
            )
            for state in sorted(member.vendor_states.all(), key=lambda state: state.vendor)
        ]
        return format_html_join(" ", "{}", ((chip,) for chip in chips)) or "—"

    def save_model(self, request: HttpRequest, obj: Member, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # The admin's change view is one transaction: the change and the vendor work it needs are recorded together.
        # Who made it is in the admin's own log of the page.
        previous = {name: form.initial.get(name) for name in form.changed_data}
        with changes.changed_by(changes.ON_THE_ADMIN_PAGE):
            sync.record_change(obj, set(form.changed_data), previous)


@admin.register(LoyaltyEvent)
class LoyaltyEventAdmin(ReplicaChangeListMixin, ClientScopedAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    list_display = ["occurred_at", "client", "member", "event_type", "external_id", "messages_planned_at"]
    list_filter = [ClientFilter, "event_type"]
    search_fields = ["=external_id"]  # shows the box; get_search_results says what it finds
    search_help_text = "The sender's event id, exact."
    list_select_related = ["client", "member"]
    raw_id_fields = ["member"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[LoyaltyEvent], search_term: str
    ) -> tuple[QuerySet[LoyaltyEvent], bool]:
        """The sender's event id as given, from its index (`loyaltyevent_external_id`): Django's "=" search compares
        in any case (UPPER on both sides), which no index answers — a scan of every event (0.6 s at 2 million)."""
        term = search_term.strip()
        return (queryset.filter(external_id=term) if term else queryset), False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
