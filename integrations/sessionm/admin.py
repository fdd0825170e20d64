"""SessionM in the admin: each member's SessionM profile and wallet offers on the member page, the eligible
campaigns on demand (for support staff: a page opened from the member page's profile, or a list action), sending a
member's profile now, and read-only lists of offers, profiles (forget requests included) and relayed transactions
— scoped to the user's clients."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from integrations.admin.base import ClientFilter, ReadOnlyAdmin, VendorAdmin, first_few, run_for_each
from integrations.http import VendorError
from integrations.models import Connection
from integrations.outcome import NotReady
from integrations.sessionm.campaigns import campaigns_for, eligible_campaigns
from integrations.sessionm.models import OfferScan, SessionMOffer, SessionMProfile, SessionMTransaction
from integrations.sessionm.offers import scan_running_since
from integrations.sessionm.profiles import sync_profile
from members.models import Member


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


CAMPAIGNS_URL_NAME = "sessionm_sessionmprofile_campaigns"


class SessionMProfileInline(ReadOnlyInline):
    model = SessionMProfile
    verbose_name = "SessionM profile"
    fields = readonly_fields = ("external_id", "user_id", "created_at", "campaigns")

    @admin.display(description="Eligible campaigns")
    def campaigns(self, profile: SessionMProfile) -> str:
        url = reverse(f"admin:{CAMPAIGNS_URL_NAME}", args=[profile.pk])
        return format_html('<a class="button" href="{}">Show eligible campaigns…</a>', url)


class SessionMOfferInline(ReadOnlyInline):
    model = SessionMOffer
    verbose_name = "SessionM offer"
    fields = readonly_fields = (
        "name", "description", "redemption_end_date", "redeemed", "first_seen", "issued_event", "expiring_event",
    )  # fmt: skip


@admin.action(description="Show eligible SessionM campaigns", permissions=["view"])
def show_campaigns(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    members = first_few(model_admin, request, queryset.select_related("client"), "looked up")
    run_for_each(model_admin, request, members, eligible_campaigns)


@admin.action(description="Send to SessionM now", permissions=["change"])
def sync_to_sessionm(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    members = first_few(model_admin, request, queryset.select_related("client"), "sent")
    run_for_each(model_admin, request, members, sync_profile)


@admin.register(SessionMOffer)
class SessionMOfferAdmin(ReadOnlyAdmin):
    list_display = ["name", "member", "client", "redemption_end_date", "redeemed", "first_seen", "issued_event"]
    list_filter = [ClientFilter, "redeemed"]
    search_fields = ["name", "offer_id", "member__phone", "member__email"]
    list_select_related = ["member", "client", "issued_event"]


@admin.register(SessionMProfile)
class SessionMProfileAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "user_id", "member", "client", "forget_requested_at", "forgotten_at", "detail"]
    list_filter = [ClientFilter]
    search_fields = ["external_id", "user_id"]
    list_select_related = ["member", "client"]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.campaigns_view)
        return [path("<int:pk>/campaigns/", view, name=CAMPAIGNS_URL_NAME), *super().get_urls()]

    def campaigns_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The member's eligible campaigns, asked of SessionM when the page opens (support staff, from the member
        page). Scoped like the list: a client user reaches only their clients' profiles."""
        if not self.has_view_permission(request):
            raise Http404
        profile = get_object_or_404(self.get_queryset(request).select_related("member__client"), pk=pk)
        if profile.member is None:
            raise Http404("The member was deleted.")
        campaigns, problem = [], ""
        try:
            campaigns = campaigns_for(profile.member)
        except NotReady as exc:
            problem = str(exc)
        except VendorError as exc:
            problem = f"SessionM could not be asked: {exc.for_admin}"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Eligible SessionM campaigns of {profile.member}",
            "member": profile.member,
            "campaigns": campaigns,
            "problem": problem,
            "member_url": reverse("admin:members_member_change", args=[profile.member.pk]),
        }
        return TemplateResponse(request, "admin/sessionm/campaigns.html", context)


@admin.register(SessionMTransaction)
class SessionMTransactionAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "member", "client", "status", "detail", "created_at"]
    list_filter = [ClientFilter, "status"]
    search_fields = ["request_id", "member__phone", "member__email"]
    list_select_related = ["member", "client"]


@admin.display(description="wallet scan")
def wallet_scan(connection: Connection) -> str:
    """Where the connection's wallet scan stands, and whether a run is scanning now (since when, in the client's
    time zone): a "Run now" of the scan while one runs finds it busy."""
    scan = OfferScan.objects.filter(connection=connection).first() if connection.pk else None
    if scan is None:
        return "not started: the scheduled scan reads the wallets (Periodic tasks)"
    running = scan_running_since(connection) or "not running"
    passes = f"{scan.passes} complete {ngettext('pass', 'passes', scan.passes)}"
    return f"{passes}; next from member {scan.last_member_id}; {running}"


ADMIN = VendorAdmin(
    connection_fields=(wallet_scan,),
    member_actions=(show_campaigns, sync_to_sessionm),
    member_inlines=(SessionMProfileInline, SessionMOfferInline),
)
