"""Admin of the loyalty side, scoped to the user's clients like everything else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from integrations.admin import ClientFilter, ClientScopedAdmin
from integrations.annexcloud import flows as annexcloud
from integrations.attentive import flows as attentive
from integrations.http import VendorError
from integrations.tasks import attentive_subscribe, attentive_unsubscribe
from integrations.tenancy import scope_to_clients, visible_clients
from integrations.vibes import persons as vibes_persons
from members import flows, imports, segments
from members.api import csv_download
from members.exports import should_export_in_background
from members.imports import ImportFileError, import_members
from members.models import (
    PLACEHOLDERS,
    ChannelSubscription,
    LoyaltyEvent,
    Member,
    MessageTemplate,
    OutboundMessage,
    Segment,
    SegmentExport,
    VibesListSubscription,
)
from members.phones import InvalidPhone, to_e164

# Up to this many members, a bulk action runs at once and reports per member; more are queued.
SYNC_ACTION_LIMIT = 20


class MemberForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = [
            "client", "annex_cloud_id", "email", "phone", "first_name", "last_name", "zip_code",
            "opted_in", "status", "tier", "points",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        client = cleaned.get("client") or getattr(self.instance, "client", None)
        if cleaned.get("phone") and client is not None:
            try:
                cleaned["phone"] = to_e164(cleaned["phone"], client.default_region)
            except InvalidPhone as exc:
                self.add_error("phone", str(exc))
        return cleaned


class MemberImportForm(forms.Form):
    client = forms.ModelChoiceField(queryset=None)
    file = forms.FileField(help_text="UTF-8 CSV with a header row.")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["client"].queryset = visible_clients(user)


class VibesSubscriptionInline(admin.TabularInline):
    model = VibesListSubscription
    extra = 0
    can_delete = False
    verbose_name = "Vibes list subscription"
    fields = ["list_id", "state", "opt_in_date", "opt_out_date", "opt_out_reason", "last_event_date"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SubscriptionInline(admin.TabularInline):
    model = ChannelSubscription
    extra = 0
    can_delete = False
    readonly_fields = ["vendor", "type", "channel", "state", "last_result", "updated_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def confirm_then(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Member],
    *,
    verb: str,
    run: Callable[[Member], attentive.Outcome],
    queue: Callable[[int], Any],
) -> TemplateResponse | None:
    """Django-style bulk action: a confirmation page first for more than one member; small sets run now with a
    message per member, large ones are queued."""
    members = list(queryset.select_related("client"))
    if len(members) > 1 and "confirm" not in request.POST:
        context = {
            **modeladmin.admin_site.each_context(request),
            "opts": modeladmin.opts,
            "title": f"{verb.capitalize()} {len(members)} members at Attentive?",
            "members": members[:100],
            "pks": [m.pk for m in members],
            "count": len(members),
            "verb": verb,
            "action": request.POST["action"],
            "queued": len(members) > SYNC_ACTION_LIMIT,
        }
        return TemplateResponse(request, "admin/members/member/confirm_action.html", context)
    if len(members) > SYNC_ACTION_LIMIT:
        for member in members:
            queue(member.pk)
        modeladmin.message_user(
            request, f"Queued: {verb} {len(members)} members. Their Attentive state updates in this list as it runs."
        )
        return None
    for member in members:
        try:
            outcome = run(member)
        except attentive.AttentiveNotReady as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        except VendorError as exc:
            modeladmin.message_user(request, f"{member}: {exc.for_admin}", messages.ERROR)
        else:
            modeladmin.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else messages.WARNING)
    return None


@admin.register(Member)
class MemberAdmin(ClientScopedAdmin):
    form = MemberForm
    list_display = ["__str__", "client", "email", "phone", "opted_in", "text_state", "tier", "points", "status"]
    list_filter = [ClientFilter, "opted_in", "status", "tier"]
    search_fields = ["email", "phone", "first_name", "last_name", "annex_cloud_id"]
    list_select_related = ["client"]
    inlines = [SubscriptionInline, VibesSubscriptionInline]
    actions = [
        "subscribe_at_attentive",
        "check_attentive_eligibility",
        "unsubscribe_at_attentive",
        "refresh_from_annex_cloud",
        "sync_to_vibes",
        "add_to_segment",
    ]
    change_list_template = "admin/members/member/change_list.html"

    def get_urls(self) -> list[Any]:
        import_view = path("import/", self.admin_site.admin_view(self.import_view), name="members_member_import")
        return [import_view, *super().get_urls()]

    def import_view(self, request: HttpRequest) -> TemplateResponse:
        """Upload a CSV of members; bad rows are listed with their line numbers, good rows are kept."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = MemberImportForm(request.POST or None, request.FILES or None, user=request.user)
        report_lines: list[str] = []
        if request.method == "POST" and form.is_valid():
            try:
                report = import_members(form.cleaned_data["client"], form.cleaned_data["file"].file)
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                report_lines = list(imports.report_lines(report))
                level = messages.SUCCESS if not report.failed else messages.WARNING
                self.message_user(request, report_lines[0], level)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Import members from CSV",
            "form": form,
            "report_lines": report_lines[1:],
            "columns": sorted(imports.COLUMNS),
        }
        return TemplateResponse(request, "admin/members/member/import.html", context)

    @admin.action(description="Refresh from Annex Cloud", permissions=["change"])
    def refresh_from_annex_cloud(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        for member in queryset.select_related("client")[:SYNC_ACTION_LIMIT]:
            try:
                outcome = annexcloud.refresh_member(member)
            except annexcloud.AnnexCloudNotReady as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            except VendorError as exc:
                self.message_user(request, f"{member}: {exc.for_admin}", messages.ERROR)
                continue
            self.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else messages.WARNING)

    @admin.action(description="Send to Vibes now", permissions=["change"])
    def sync_to_vibes(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        for member in queryset.select_related("client")[:SYNC_ACTION_LIMIT]:
            try:
                outcome = vibes_persons.sync_person(member)
            except VendorError as exc:
                self.message_user(request, f"{member}: {exc.for_admin}", messages.ERROR)
                continue
            self.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else messages.WARNING)

    @admin.action(description="Add to a segment…", permissions=["change"])
    def add_to_segment(self, request: HttpRequest, queryset: QuerySet[Member]) -> TemplateResponse | None:
        client_ids = set(queryset.values_list("client_id", flat=True))
        choices = scope_to_clients(Segment.objects.filter(client_id__in=client_ids), request.user)
        if "segment" in request.POST:
            segment = choices.filter(pk=request.POST["segment"]).first()
            if segment is None:
                self.message_user(request, "Choose a segment of the members' client.", messages.ERROR)
                return None
            added = segments.add_members(segment, queryset)
            self.message_user(request, f"Added {added} member(s) to {segment}.")
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
        return super().get_queryset(request).prefetch_related("subscriptions")

    @admin.display(description="Attentive TEXT")
    def text_state(self, member: Member) -> str:
        states = [s.state for s in member.subscriptions.all() if s.vendor == "attentive" and s.channel == "TEXT"]
        return states[0] if states else "—"

    def save_model(self, request: HttpRequest, obj: Member, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        flows.member_changed(obj, set(form.changed_data), previous_opt_in=form.initial.get("opted_in", False))

    @admin.action(description="Subscribe at Attentive", permissions=["change"])
    def subscribe_at_attentive(self, request: HttpRequest, queryset: QuerySet[Member]) -> TemplateResponse | None:
        return confirm_then(
            self, request, queryset, verb="subscribe", run=attentive.subscribe, queue=attentive_subscribe.delay
        )

    @admin.action(description="Check Attentive eligibility", permissions=["view"])
    def check_attentive_eligibility(self, request: HttpRequest, queryset: QuerySet[Member]) -> TemplateResponse | None:
        return confirm_then(
            self,
            request,
            queryset[:SYNC_ACTION_LIMIT],
            verb="check eligibility of",
            run=attentive.check_eligibility,
            queue=lambda pk: None,
        )

    @admin.action(description="Unsubscribe at Attentive", permissions=["change"])
    def unsubscribe_at_attentive(self, request: HttpRequest, queryset: QuerySet[Member]) -> TemplateResponse | None:
        return confirm_then(
            self, request, queryset, verb="unsubscribe", run=attentive.unsubscribe, queue=attentive_unsubscribe.delay
        )


@admin.register(LoyaltyEvent)
class LoyaltyEventAdmin(ClientScopedAdmin):
    list_display = ["occurred_at", "client", "member", "event_type", "external_id", "messages_planned_at"]
    list_filter = [ClientFilter, "event_type"]
    search_fields = ["external_id", "member__email", "member__phone"]
    list_select_related = ["client", "member"]
    raw_id_fields = ["member"]
    date_hierarchy = "occurred_at"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["client", "event_type", "connection", "text", "active"]
        help_texts = {"text": "Placeholders: " + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)}


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ClientScopedAdmin):
    form = MessageTemplateForm
    list_display = ["client", "event_type", "connection", "active", "text"]
    list_filter = [ClientFilter, "event_type", "active"]
    list_select_related = ["client", "connection"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ClientScopedAdmin):
    client_path = "member__client"
    list_display = ["created_at", "member", "to", "status", "body", "detail", "sent_at"]
    list_filter = ["status", "template__event_type"]
    search_fields = ["to", "body", "member__email"]
    list_select_related = ["member"]
    readonly_fields = [
        "event",
        "template",
        "member",
        "connection",
        "to",
        "body",
        "status",
        "detail",
        "created_at",
        "sent_at",
    ]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send the selected failed messages again", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        count = queryset.filter(status=OutboundMessage.Status.FAILED).update(
            status=OutboundMessage.Status.PENDING, detail="Resent from the admin.", claim=""
        )
        self.message_user(request, f"{count} message(s) will go out with the next run of the message job.")


class SegmentForm(forms.ModelForm):
    add_emails = forms.CharField(
        label="Add members by e-mail",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="E-mail addresses separated by commas, as in Annex Cloud's segment `member` field.",
    )

    class Meta:
        model = Segment
        fields = [
            "client", "name", "type", "from_date", "to_date", "status", "external_id", "external_name", "saved_filter",
        ]  # fmt: skip
        help_texts = {
            "saved_filter": 'e.g. {"opted_in": true, "tier": "Gold", "joined_from": "2026-01-01"}; '
            "fields: " + ", ".join(sorted(segments.FILTER_FIELDS))
        }

    def clean_saved_filter(self) -> dict[str, Any]:
        value = self.cleaned_data["saved_filter"] or {}
        if not isinstance(value, dict):
            raise forms.ValidationError("The saved filter is a JSON object.")
        unknown = set(value) - segments.FILTER_FIELDS
        if unknown:
            raise forms.ValidationError(f"Unknown filter field(s): {', '.join(sorted(unknown))}.")
        return value


class SegmentExportInline(admin.TabularInline):
    model = SegmentExport
    extra = 0
    can_delete = False
    fields = ["created_at", "status", "rows", "download", "error"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="file")
    def download(self, export: SegmentExport) -> str:
        if export.status != SegmentExport.Status.READY:
            return "—"
        url = reverse("admin:members_segmentexport_download", args=[export.pk])
        return format_html('<a href="{}">Download CSV</a>', url)


@admin.register(Segment)
class SegmentAdmin(ClientScopedAdmin):
    form = SegmentForm
    list_display = ["name", "client", "type", "status", "size", "annex_cloud_segment_id", "pushed_at"]
    list_filter = [ClientFilter, "type", "status"]
    search_fields = ["name", "external_id", "external_name"]
    readonly_fields = ["annex_cloud_segment_id", "pushed_at", "push_result"]
    inlines = [SegmentExportInline]
    actions = ["export_csv", "push_to_annex_cloud", "apply_saved_filter"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Segment]:
        return super().get_queryset(request).select_related("client").annotate(size=Count("links"))

    @admin.display(description="members", ordering="size")
    def size(self, segment: Segment) -> int:
        return segment.size

    def save_model(self, request: HttpRequest, obj: Segment, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("add_emails"):
            added, unknown = segments.add_members_by_emails(obj, form.cleaned_data["add_emails"])
            self.message_user(request, f"Added {added} member(s) to {obj}.")
            if unknown:
                self.message_user(
                    request, f"No member of {obj.client} has: {', '.join(unknown[:20])}.", messages.WARNING
                )

    @admin.action(description="Export as CSV (for Attentive)", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Segment]) -> Any:
        if queryset.count() != 1:
            self.message_user(request, "Choose one segment to export.", messages.ERROR)
            return None
        segment = queryset.get()
        if should_export_in_background(segment):
            segments.request_background_export(segment)
            self.message_user(
                request,
                f"{segment} is large: it is being exported in the background. The download link appears on the "
                "segment's page when it is ready.",
            )
            return None
        return csv_download(segment)

    @admin.action(description="Push to Annex Cloud", permissions=["change"])
    def push_to_annex_cloud(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset.select_related("client"):
            outcome = segments.push_to_annex_cloud(segment)
            self.message_user(request, outcome.message, messages.SUCCESS if outcome.ok else messages.ERROR)

    @admin.action(description="Add the members matching the saved filter", permissions=["change"])
    def apply_saved_filter(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset:
            self.message_user(request, f"{segment}: added {segments.apply_saved_filter(segment)} member(s).")


@admin.register(SegmentExport)
class SegmentExportAdmin(ClientScopedAdmin):
    client_path = "segment__client"
    list_display = ["segment", "created_at", "status", "rows", "finished_at"]
    list_filter = ["status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        download = path(
            "<int:pk>/download/",
            self.admin_site.admin_view(self.download_view),
            name="members_segmentexport_download",
        )
        return [download, *super().get_urls()]

    def download_view(self, request: HttpRequest, pk: int) -> FileResponse:
        export = get_object_or_404(self.get_queryset(request), pk=pk, status=SegmentExport.Status.READY)
        return FileResponse(export.file.open("rb"), as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1])
