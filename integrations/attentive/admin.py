"""Attentive in the admin: the activation page of a client (credentials and sign-up sources, verified at once) and
the member actions that subscribe, check eligibility and unsubscribe."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from integrations import audit
from integrations.admin.base import (
    SYNC_ACTION_LIMIT,
    ClientPage,
    VendorAdmin,
    absolute_url,
    client_for_site_admin,
    copy_button,
    render_client_page,
    run_for_each,
    secret_input,
)
from integrations.attentive import flows as attentive
from integrations.attentive.flows import SignUpSourceInput
from integrations.attentive.models import SignUpSource
from integrations.connections import connection_of
from integrations.models import Client, Connection
from integrations.outcome import Outcome
from integrations.queue import enqueue
from integrations.sandbox.directory import sandbox_fill
from members.models import Member


class AttentiveActivationForm(forms.Form):
    environment = forms.ChoiceField(
        choices=Connection.Environment.choices,
        initial=Connection.Environment.PRODUCTION,
        help_text="Production calls Attentive itself; sandbox calls the portal's own Attentive simulator "
        "(its credentials are on /sandbox/).",
    )
    sign_up_sources = forms.CharField(
        error_messages={"required": "Add at least one sign-up source: Attentive needs one to subscribe members."},
        label="Sign-up sources",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 50, "placeholder": "132109, Loyalty sign-up"}),
        help_text="One per line: the sign-up flow id from Attentive's Subscribers tab, a comma, a name. "
        "The first line is the default used for subscriptions.",
    )

    def __init__(self, *args: Any, has_api_key: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep = " Leave blank to keep the stored one." if has_api_key else ""
        self.fields["api_key"] = secret_input(
            "API key",
            required=not has_api_key,
            help_text="From a private app created in Attentive's Integrations tab." + keep,
        )
        self.fields["legacy_token"] = secret_input(
            "Legacy messages token",
            required=False,
            help_text="Needed to send messages; Attentive activates it on request (legacyapi@attentivemobile.com)."
            + keep,
        )
        self.fields["webhook_signing_key"] = secret_input(
            "Webhook signing key",
            required=False,
            help_text="From the webhook created for this client in Attentive (events sms.subscribed, "
            "sms.unsubscribed, email.unsubscribed, sent to the connection's webhook URL)." + keep,
        )
        self.order_fields(["environment", "api_key", "legacy_token", "webhook_signing_key", "sign_up_sources"])

    def clean_sign_up_sources(self) -> list[SignUpSourceInput]:
        sources: list[SignUpSourceInput] = []
        for number, line in enumerate(self.cleaned_data["sign_up_sources"].splitlines(), start=1):
            if not line.strip():
                continue
            source_id, _, name = (part.strip() for part in line.partition(","))
            if not source_id.isdigit():
                raise forms.ValidationError(f"Line {number}: {source_id!r} is not a sign-up flow id (digits only).")
            if any(s.source_id == source_id for s in sources):
                raise forms.ValidationError(f"Line {number}: sign-up source {source_id} is listed twice.")
            sources.append(SignUpSourceInput(source_id, name, is_default=not sources))
        if not sources:
            raise forms.ValidationError("Add at least one sign-up source: Attentive needs one to subscribe members.")
        return sources


@method_decorator(sensitive_post_parameters())
def activation_view(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """The site admin's first journey: enter Attentive's credentials and sign-up sources, verified at once."""
    client = client_for_site_admin(model_admin, request, pk)
    connection = connection_of(client, attentive.VENDOR)
    has_key = bool(connection and connection.secret("api_key"))
    if request.method == "POST":
        form = AttentiveActivationForm(request.POST, has_api_key=has_key)
        if form.is_valid():
            outcome = activate_for(request, client, form.cleaned_data)
            if outcome.ok:
                model_admin.message_user(request, f"Attentive is active for {client}. {outcome.message}")
                return HttpResponseRedirect(reverse("admin:integrations_client_change", args=[client.pk]))
            # The connection keeps its status and the credentials it had (refused ones are not kept); the form shows
            # again to correct them.
            model_admin.message_user(request, f"Attentive was not activated. {outcome.message}", messages.ERROR)
            connection = connection_of(client, attentive.VENDOR)
    else:
        sources = SignUpSource.objects.filter(client=client).order_by("-is_default", "pk")
        initial = {
            "sign_up_sources": "\n".join(f"{s.source_id}, {s.name}" for s in sources),
            "environment": connection.environment if connection else Connection.Environment.PRODUCTION,
        }
        form = AttentiveActivationForm(initial=initial, has_api_key=has_key)
    fill = sandbox_fill(attentive.VENDOR, connection.environment if connection else "")
    return render_client_page(
        model_admin,
        request,
        client,
        "admin/attentive/activate.html",
        title=f"Activate Attentive for {client}",
        form=form,
        connection=connection,
        sandbox_fill=fill,
        sandbox_fill_json=json.dumps(fill),
    )


def activate_for(request: HttpRequest, client: Client, data: dict[str, Any]) -> Outcome:
    """Activate for a person, recorded in the audit trail: the connection's fields and secrets (by name only), the
    client's sign-up sources, and the outcome of the verification."""
    before = activation_state(client)
    outcome = attentive.activate(client, **data)
    connection = connection_of(client, attentive.VENDOR)
    if connection is not None:
        audit.record(
            request.user, audit.Action.ACTIVATED, connection, before, activation_state(client), note=outcome.message
        )
    return outcome


def activation_state(client: Client) -> audit.State:
    connection = connection_of(client, attentive.VENDOR)
    return {**(audit.connection_state(connection) if connection else {}), **client_audit_state(client)}


def client_audit_state(client: Client) -> dict[str, str]:
    """The client's sign-up sources in its audit trail (edited on the client's page and on the activation page)."""
    sources = SignUpSource.objects.filter(client=client).order_by("source_id")
    return {"sign_up_sources": "; ".join(f"{s.source_id} {s.name}{' (default)' * s.is_default}" for s in sources)}


class SignUpSourceInline(admin.TabularInline):
    model = SignUpSource
    extra = 0
    fields = ["source_id", "name", "is_default"]


# --- Member actions ----------------------------------------------------------------------------------------------


def confirm_then(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Member],
    *,
    verb: str,
    flow: Callable[[Member], Outcome],
    task: str = "",
    task_args: tuple[Any, ...] = (),
    choice: forms.Form | None = None,
) -> TemplateResponse | None:
    """Django-style bulk action: a confirmation page first for more than one member (always, when there is a
    `choice` to make on it); small sets run now with a message per member, large ones are queued (when there is a
    task for it), each as `task(member pk, *task_args)`."""
    members = list(queryset.select_related("client"))
    queue = bool(task) and len(members) > SYNC_ACTION_LIMIT
    if (len(members) > 1 or choice is not None) and ("confirm" not in request.POST or not valid(choice)):
        context = {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": f"{verb.capitalize()} {len(members)} member{pluralize(len(members))} at Attentive?",
            "members": members[:100],
            "pks": [m.pk for m in members],
            "count": len(members),
            "verb": verb,
            "action": request.POST["action"],
            "queued": queue,
            "form": choice,
        }
        return TemplateResponse(request, "admin/attentive/confirm_member_action.html", context)
    if queue:
        for member in members:
            enqueue(task, member.pk, *task_args)
        model_admin.message_user(
            request, f"Queued: {verb} {len(members)} members. Their Attentive state updates in this list as it runs."
        )
        return None
    run_for_each(model_admin, request, members[:SYNC_ACTION_LIMIT], flow)
    return None


@admin.action(description="Subscribe at Attentive", permissions=["change"])
def subscribe_at_attentive(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> Any:
    return confirm_then(
        model_admin,
        request,
        queryset,
        verb="subscribe",
        flow=attentive.subscribe,
        task="integrations.attentive_subscribe",
    )


@admin.action(description="Check Attentive eligibility", permissions=["view"])
def check_attentive_eligibility(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> Any:
    return confirm_then(
        model_admin,
        request,
        queryset[:SYNC_ACTION_LIMIT],
        verb="check eligibility of",
        flow=attentive.check_eligibility,
    )


def valid(choice: forms.Form | None) -> bool:
    return choice is None or choice.is_valid()


def pluralize(count: int) -> str:
    return "" if count == 1 else "s"


class UnsubscribeChannelsForm(forms.Form):
    """The channels to leave, chosen on the confirmation page (SMS only unless the admin says otherwise)."""

    CHOICES = {
        attentive.SMS: (attentive.SMS,),
        attentive.EMAIL: (attentive.EMAIL,),
        "both": (attentive.SMS, attentive.EMAIL),
    }
    channels = forms.ChoiceField(
        label="Unsubscribe from",
        choices=[(attentive.SMS, "SMS only"), (attentive.EMAIL, "E-mail only"), ("both", "SMS and e-mail")],
        initial=attentive.SMS,
        widget=forms.RadioSelect,
        help_text="SMS is the member's SMS opt-in (it goes out through the member-state reconciler). E-mail is "
        f"one unsubscribe call per member: at once for up to {SYNC_ACTION_LIMIT} members, queued for more.",
    )

    def clean_channels(self) -> tuple[str, ...]:
        return self.CHOICES[self.cleaned_data["channels"]]


@admin.action(description="Unsubscribe at Attentive (SMS, e-mail or both)…", permissions=["change"])
def unsubscribe_at_attentive(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> Any:
    choice = UnsubscribeChannelsForm(request.POST if "confirm" in request.POST else None)
    channels = choice.cleaned_data["channels"] if choice.is_bound and choice.is_valid() else (attentive.SMS,)
    return confirm_then(
        model_admin,
        request,
        queryset,
        verb="unsubscribe",
        flow=lambda member: attentive.unsubscribe(member, channels),
        # Queued unsubscribes carry the chosen channels (a list: what a task's JSON arguments hold).
        task="integrations.attentive_unsubscribe",
        task_args=(list(channels),),
        choice=choice,
    )


@admin.display(description="webhook URL")
def webhook_url(connection: Connection) -> str:
    if not connection.inbound_token:
        return "— (save the connection to get one)"
    url = absolute_url(reverse("attentive-callback", args=[connection.inbound_token]))
    return format_html(
        '<code id="attentive-webhook-url">{}</code> {}<div class="help">Create a webhook for this client in '
        "Attentive with this whole URL and the events sms.subscribed, sms.unsubscribed and email.unsubscribed, "
        "then paste its signing key into this connection's secrets.</div>",
        url,
        copy_button("attentive-webhook-url"),
    )


ADMIN = VendorAdmin(
    client_pages=(ClientPage("attentive", "Activate Attentive", activation_view),),
    client_inlines=(SignUpSourceInline,),
    connection_fields=(webhook_url,),
    member_actions=(subscribe_at_attentive, check_attentive_eligibility, unsubscribe_at_attentive),
)
