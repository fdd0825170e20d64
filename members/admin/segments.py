"""Segments (filling, CSV export, each vendor's segment actions) and their background exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import FileResponse, HttpRequest
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from integrations.admin.base import ClientFilter, ClientScopedAdmin, collected, rendering_for, rendering_request
from members import segments
from members.exports import csv_download, should_export_in_background
from members.models import Segment, SegmentExport

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    class SegmentSize(TypedDict):
        """What SegmentAdmin.get_queryset annotates each segment with: its member count."""

        size: int


SEGMENT_MEMBERS_PER_PAGE = 25


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
            "type": "Annex Cloud's segment type: Current Data = members as they are now; Past Data = members as they "
            "were between the from and to dates.",
            "from_date": "Start of the period the segment covers (optional; sent to Annex Cloud as from_date). Blank "
            "dates are left out, never sent empty.",
            "to_date": "End of that period (optional; on or after the from date).",
            "status": "ACTIVE segments can be used in Annex Cloud campaigns; INACTIVE ones are kept but not used.",
            "external_id": "Your own id for this segment (e.g. the id in the system it comes from); sent to Annex "
            "Cloud with the segment so you can find it there. Free text, optional.",
            "external_name": "The segment's name as shown in Annex Cloud, if it differs from the name here.",
            "saved_filter": 'e.g. {"opted_in": true, "tier": "Gold", "joined_from": "2026-01-01"}; '
            "fields: " + ", ".join(sorted(segments.FILTER_FIELDS)) + " (opted_in: SMS; loyalty_opted_in: Annex "
            "Cloud's loyalty opt-in).",
        }

    def clean_saved_filter(self) -> dict[str, Any]:
        value = self.cleaned_data["saved_filter"] or {}
        if not isinstance(value, dict):
            raise forms.ValidationError("The saved filter is a JSON object.")
        unknown = set(value) - segments.FILTER_FIELDS
        if unknown:
            raise forms.ValidationError(
                f"Unknown filter {ngettext('field', 'fields', len(unknown))}: {', '.join(sorted(unknown))}."
            )
        return value


class SegmentExportInline(admin.TabularInline):
    model = SegmentExport
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "status", "rows", "download", "error")

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
    readonly_fields = ["annex_cloud_segment_id", "pushed_at", "push_result", "segment_members"]
    inlines = [SegmentExportInline]

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # Rendered here, inside rendering_for(): the member list pages by the request's ?members_page=.
        with rendering_for(request):
            response = super().changeform_view(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
        return response

    @admin.display(description="members of this segment")
    def segment_members(self, segment: Segment) -> str:
        """The segment's members, a page at a time, with how many there are and how many may get SMS."""
        if segment.pk is None:
            return "Save the segment, then add members (here by e-mail, from the member list, or the saved filter)."
        request = rendering_request()
        members = segment.members.order_by("last_name", "first_name", "pk")
        counts = members.aggregate(total=Count("pk"), opted_in=Count("pk", filter=Q(opted_in=True)))
        if not counts["total"]:
            return (
                "No members yet: add them by e-mail above, from the member list (Add to a segment…) or by the "
                "saved filter."
            )
        page = Paginator(members, SEGMENT_MEMBERS_PER_PAGE).get_page(request.GET.get("members_page") if request else 1)
        return render_to_string(
            "admin/members/segment/members.html",
            {"page": page, "counts": counts, "first": page.start_index(), "last": page.end_index()},
        )

    # A property, so the vendors' actions are collected when the list is shown; ModelAdmin declares `actions` as a
    # class attribute, which a property overrides only at run time.
    @property
    def actions(self) -> list[Any]:  # type: ignore[override]
        """The segment's own actions, then each vendor's (push to Annex Cloud, ...)."""
        return ["export_csv", "apply_saved_filter", *collected("segment_actions")]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Segment]:
        return super().get_queryset(request).select_related("client").annotate(size=Count("links"))

    @admin.display(description="members", ordering="size")
    def size(self, segment: WithAnnotations[Segment, SegmentSize]) -> int:
        return segment.size

    def save_model(self, request: HttpRequest, obj: Segment, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("add_emails"):
            added, unknown = segments.add_members_by_emails(obj, form.cleaned_data["add_emails"])
            self.message_user(request, f"Added {added} {ngettext('member', 'members', added)} to {obj}.")
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

    @admin.action(description="Add the members matching the saved filter", permissions=["change"])
    def apply_saved_filter(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        for segment in queryset:
            added = segments.apply_saved_filter(segment)
            self.message_user(request, f"{segment}: added {added} {ngettext('member', 'members', added)}.")


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
