"""Annex Cloud in the admin: a client's site credentials page, the partner access token (masked, revealed to site
admins), refreshing members from Annex Cloud, crediting or debiting their points there (and the record of those
transactions), and pushing segments to it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from integrations import audit
from integrations.admin.base import (
    SYNC_ACTION_LIMIT,
    ClientFilter,
    ClientPage,
    ReadOnlyAdmin,
    VendorAdmin,
    client_for_site_admin,
    first_few,
    render_client_page,
    run_for_each,
    secret_input,
)
from integrations.annexcloud import flows as annexcloud
from integrations.annexcloud.api import partner_access_token
from integrations.annexcloud.flows import MAX_POINTS, KeyReused
from integrations.connections import leave_disabled, mask, save_and_verify, unreadable_secrets_message
from integrations.models import Connection
from integrations.outcome import Outcome
from integrations.sandbox.directory import sandbox_fill
from integrations.tenancy import is_site_admin
from members.models import Member, PointsTransaction, Segment
from portal.admin_filters import since_filter


class AnnexCloudCredentialsForm(forms.Form):
    site_id = forms.RegexField(
        regex=r"^\d+$",
        label="Site id",
        error_messages={"invalid": "The site id is a number given by Annex Cloud."},
        help_text="The client's Annex Cloud site id (a number, in Annex Cloud's admin under Settings).",
    )

    def __init__(self, *args: Any, has_secrets: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep = " Leave blank to keep the stored one." if has_secrets else ""
        self.fields["loyalty_token"] = secret_input(
            "Loyalty token",
            required=not has_secrets,
            help_text="The site's loyalty token from Annex Cloud; with the site id it makes the partner access "
            "token." + keep,
        )
        self.fields["api_secret"] = secret_input(
            "API shared secret", required=False, help_text="Signs Loyalty API v3 calls." + keep
        )


@method_decorator(sensitive_post_parameters())
def site_credentials_view(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """The client's Annex Cloud site credentials, from which the partner access token is derived."""
    client = client_for_site_admin(model_admin, request, pk)
    connection, _ = Connection.objects.get_or_create(client=client, vendor=annexcloud.VENDOR)
    has_secrets = bool(connection.secret("loyalty_token"))
    form = AnnexCloudCredentialsForm(request.POST or None, initial={"site_id": client.site_id}, has_secrets=has_secrets)
    if request.method == "POST" and form.is_valid():
        before = {"site_id": client.site_id, **audit.connection_state(connection)}
        client.site_id = form.cleaned_data["site_id"]
        client.save(update_fields=["site_id"])
        leave_disabled(connection)
        # Verified at once (a signed look-up that changes nothing); credentials Annex Cloud refuses are not kept.
        entered = {"loyalty_token": form.cleaned_data["loyalty_token"], "api_secret": form.cleaned_data["api_secret"]}
        outcome = save_and_verify(connection, entered)
        after = {"site_id": client.site_id, **audit.connection_state(connection)}
        audit.record(request.user, audit.Action.CREDENTIALS, connection, before, after, note=outcome.message)
        level = messages.SUCCESS if outcome.ok else messages.ERROR
        model_admin.message_user(request, f"Annex Cloud site credentials of {client}: {outcome.message}", level)
        return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[connection.pk]))
    fill = sandbox_fill(annexcloud.VENDOR, connection.environment)
    return render_client_page(
        model_admin,
        request,
        client,
        "admin/annexcloud/site_credentials.html",
        title=f"Annex Cloud site credentials of {client}",
        form=form,
        sandbox_fill=fill,
        sandbox_fill_json=json.dumps(fill),
    )


# --- The partner access token on the connection's page -----------------------------------------------------------


@admin.display(description="partner access token")
def partner_access_token_field(connection: Connection) -> str:
    if connection.secrets_unreadable:
        return unreadable_secrets_message(connection)
    token = partner_access_token(connection.secret("loyalty_token"), connection.client.site_id)
    if not token:
        return "Set the client's site id and the loyalty token to derive it."
    url = reverse("admin:integrations_connection_partner_token", args=[connection.pk])
    # reveal.js (the connection admin's media) swaps the masked value for the real one, for site admins.
    return format_html(
        '<code data-partner-token>{}</code> <button type="button" class="button" data-reveal-url="{}">Reveal</button>',
        mask(token),
        url,
    )


def partner_token_url(model_admin: admin.ModelAdmin) -> URLPattern:
    @never_cache
    def partner_token_view(request: HttpRequest, pk: int) -> HttpResponse:
        """The unmasked partner access token, for site admins only (fetched by the Reveal button)."""
        if not is_site_admin(request.user):
            return JsonResponse({"error": "Only site admins can reveal the partner access token."}, status=403)
        connection = get_object_or_404(model_admin.get_queryset(request), pk=pk, vendor=annexcloud.VENDOR)
        if connection.secrets_unreadable:
            return JsonResponse({"error": unreadable_secrets_message(connection)}, status=409)
        token = partner_access_token(connection.secret("loyalty_token"), connection.client.site_id)
        return JsonResponse({"token": token})

    view = model_admin.admin_site.admin_view(partner_token_view)
    return path("<int:pk>/partner-token/", view, name="integrations_connection_partner_token")


# --- Member and segment actions ----------------------------------------------------------------------------------


@admin.action(description="Refresh from Annex Cloud", permissions=["change"])
def refresh_from_annex_cloud(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    members = first_few(model_admin, request, queryset.select_related("client"), "refreshed")
    run_for_each(model_admin, request, members, annexcloud.refresh_member)


@admin.action(description="Push to Annex Cloud", permissions=["change"])
def push_to_annex_cloud(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
    run_for_each(model_admin, request, queryset.select_related("client"), annexcloud.push_segment)


# --- Points ------------------------------------------------------------------------------------------------------


class PointsAdjustmentForm(forms.Form):
    activity = forms.ChoiceField(
        choices=PointsTransaction.Activity.choices, initial=PointsTransaction.Activity.CREDIT, widget=forms.RadioSelect
    )
    points = forms.IntegerField(min_value=1, max_value=MAX_POINTS)
    action_id = forms.CharField(
        label="Action id",
        max_length=50,
        required=False,
        help_text="The Annex Cloud action; blank: the connection's points action id, else 100 (manual credit/debit).",
    )
    reason = forms.CharField(max_length=200, required=False)
    order_id = forms.CharField(label="Order id", max_length=100, required=False)
    credit_anyway = forms.BooleanField(
        label="Credit doubtful members too",
        required=False,
        help_text="Confirms a credit to members Annex Cloud reported opted out, inactive or unknown.",
    )
    # One id per rendered form: the members' keys derive from it, so submitting the same form twice awards once.
    submission = forms.UUIDField(widget=forms.HiddenInput)


def admin_key(submission: uuid.UUID, member: Member) -> str:
    return f"admin-{submission}-{member.pk}"


def points_flow(data: dict[str, Any]) -> Callable[[Member], Outcome]:
    """The form's adjustment as a flow on one member, keyed by this submission and the member."""

    def adjust(member: Member) -> Outcome:
        try:
            result = annexcloud.adjust_points(
                member,
                activity=data["activity"],
                points=data["points"],
                key=admin_key(data["submission"], member),
                action_id=data["action_id"],
                reason=data["reason"],
                order_id=data["order_id"],
            )
        except KeyReused as exc:
            return Outcome.failure(f"{member}: {exc}")
        return result.outcome

    return adjust


@admin.action(description="Award or deduct points at Annex Cloud…", permissions=["change"])
def adjust_points_at_annex_cloud(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]
) -> TemplateResponse | None:
    """A form first (activity, points, action, reason, order), then the adjustment for each selected member now,
    with a message each."""
    members = list(queryset.select_related("client")[: SYNC_ACTION_LIMIT + 1])
    if len(members) > SYNC_ACTION_LIMIT:
        model_admin.message_user(
            request, f"Choose at most {SYNC_ACTION_LIMIT} members to credit or debit points at once.", messages.ERROR
        )
        return None
    form = PointsAdjustmentForm(request.POST if "apply" in request.POST else None, initial={"submission": uuid.uuid4()})
    doubtful = doubtful_members(form, members) if form.is_valid() else []
    if form.is_valid() and (not doubtful or form.cleaned_data["credit_anyway"]):
        run_for_each(model_admin, request, members, points_flow(form.cleaned_data))
        return None
    if doubtful:
        form.add_error("credit_anyway", confirmation_request(doubtful))
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Credit or debit points of {len(members)} {ngettext('member', 'members', len(members))} "
        "at Annex Cloud",
        "form": form,
        "members": members,
        "doubtful": doubtful,
        "action": request.POST["action"],
    }
    return TemplateResponse(request, "admin/annexcloud/adjust_points.html", context)


def confirmation_request(doubtful: list[tuple[Member, list[str]]]) -> str:
    named = "; ".join(f"{member} is {' and '.join(reasons)}" for member, reasons in doubtful)
    return f"Nothing sent yet: {named}. Tick this box to credit them anyway, or go back and leave them out."


def doubtful_members(form: PointsAdjustmentForm, members: list[Member]) -> list[tuple[Member, list[str]]]:
    """The members this submission would credit although Annex Cloud reported them opted out, inactive or unknown,
    each with the reasons: a credit to them is sent only once the admin confirms it."""
    data = form.cleaned_data
    found = [
        (member, annexcloud.reasons_to_confirm(member, data["activity"], admin_key(data["submission"], member)))
        for member in members
    ]
    return [(member, reasons) for member, reasons in found if reasons]


class ReversedFilter(admin.SimpleListFilter):
    """Credits taken back since (a reversed Bazaarvoice award) or still standing: the dashboard's "Points awarded"
    links to the standing ones, the points it counts."""

    title = "reversed"
    parameter_name = "reversed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "No (still standing)"), ("yes", "Yes (taken back)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[PointsTransaction]) -> QuerySet[PointsTransaction]:
        if self.value() in ("no", "yes"):
            return queryset.filter(reversed_at__isnull=self.value() == "no")
        return queryset


class PointsTransactionAdmin(ReadOnlyAdmin):
    """Every credit and debit sent to Annex Cloud, with its key and answer; kept, so a key is never used twice."""

    list_display = ["created_at", "member", "client", "activity", "points", "status", "key", "detail"]
    list_filter = [ClientFilter, "status", "activity", ReversedFilter, since_filter("created_at")]
    search_fields = ["key", "member__email", "member__annex_cloud_id", "order_id"]
    list_select_related = ["member", "client"]
    readonly_fields = [
        "client", "member", "key", "activity", "points", "action_id", "reason", "order_id", "status",
        "detail", "response", "created_at", "reversed_at",
    ]  # fmt: skip

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.register(PointsTransaction, PointsTransactionAdmin)


ADMIN = VendorAdmin(
    client_pages=(ClientPage("annex_cloud", "Annex Cloud site credentials", site_credentials_view),),
    connection_fields=(partner_access_token_field,),
    connection_urls=(partner_token_url,),
    member_actions=(refresh_from_annex_cloud, adjust_points_at_annex_cloud),
    segment_actions=(push_to_annex_cloud,),
)
