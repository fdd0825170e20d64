"""Connections: per-vendor secrets (write-only, masked) and settings laid out as form fields, status, and the actions
that verify, disable and reset them. Vendor-specific displays come from each vendor's admin module."""

from __future__ import annotations

import copy
import json
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters

from integrations import audit, connections
from integrations.admin.base import (
    AuditedAdmin,
    ClientFilter,
    ClientScopedAdmin,
    clipped,
    rendering_for,
    report_outcomes,
    vendor_admins,
)
from integrations.models import Connection
from integrations.outcome import Outcome
from integrations.sandbox.directory import sandbox_fill
from integrations.tenancy import is_site_admin
from integrations.vendor_spec import VendorSpec
from integrations.vendors import VENDORS

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldOpts, _FieldsetSpec
    from django.utils.functional import _StrOrPromise

SECRET_PREFIX = "secret__"
SETTING_PREFIX = "setting__"
STATUS_FIELDS = ["status", "last_checked_at", "last_check_result", "consecutive_failures"]


class ConnectionForm(forms.ModelForm):
    """Connection fields plus, once the vendor is known, one password input per secret (blank keeps the stored
    value) and one typed input per vendor setting."""

    spec: VendorSpec | None = None
    # Settings shown but not editable here (the spec's site_admin_settings, for anyone but a site admin).
    locked_settings: tuple[str, ...] = ()
    base_url = forms.URLField(
        assume_scheme="https",
        required=False,
        help_text="Leave blank for the vendor's default for the chosen environment.",
    )

    class Meta:
        model = Connection
        fields = ["client", "vendor", "environment", "base_url"]
        help_texts = {
            "client": "The client whose account at the vendor this is.",
            "vendor": "Which vendor. Choosing it shows that vendor's secrets and settings below.",
            "environment": "Production and staging call the vendor itself; sandbox calls the portal's own "
            "simulator of it (see /sandbox/ for the credentials it accepts).",
        }
        # Picking the vendor reloads the add form with that vendor's secret and setting fields (connection_form.js).
        widgets = {"vendor": forms.Select(attrs={"data-reload-with": "vendor"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.spec is None:
            return
        for name, field in self.fields.items():
            if name.startswith(SETTING_PREFIX):
                field.initial = self.instance.settings.get(name.removeprefix(SETTING_PREFIX), field.initial)
                # A disabled field keeps its initial (stored) value whatever is posted.
                field.disabled = name.removeprefix(SETTING_PREFIX) in self.locked_settings
            elif name.startswith(SECRET_PREFIX):
                stored = self.instance.secret(name.removeprefix(SECRET_PREFIX)) if self.instance.pk else ""
                field.help_text = f"{field.help_text} Stored: {connections.mask(stored)}. Leave blank to keep."

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns, typed as a dict
        if self.spec is not None:
            raw = {k.removeprefix(SETTING_PREFIX): v for k, v in cleaned.items() if k.startswith(SETTING_PREFIX)}
            try:
                cleaned["settings"] = self.spec.clean_settings({k: v for k, v in raw.items() if v not in (None, "")})
            except forms.ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    def entered_secrets(self) -> dict[str, str]:
        """The secrets typed into this form, by name (blank = keep the stored one)."""
        return {k.removeprefix(SECRET_PREFIX): v for k, v in self.cleaned_data.items() if k.startswith(SECRET_PREFIX)}

    def save(self, commit: bool = True) -> Connection:
        connection: Connection = super().save(commit=False)
        if self.spec is not None:
            connection.settings = self.cleaned_data.get("settings", {})
            connections.update_secrets(connection, self.entered_secrets())
        if commit:
            connection.save()
        return connection


def connection_form_for(spec: VendorSpec | None) -> type[ConnectionForm]:
    """A form class whose declared fields include the vendor's secrets and settings, so the admin lays them out."""
    if spec is None:
        return ConnectionForm
    fields: dict[str, Any] = {"spec": spec}
    for secret in spec.secrets:
        fields[SECRET_PREFIX + secret.name] = forms.CharField(
            label=secret.label,
            required=False,
            strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            # Every field explains itself: a vendor that gave no help text gets a generic one.
            help_text=secret.help_text or f"The {secret.label.lower()} {spec.label} issued for this account.",
            validators=[connections.validate_secret],
        )
    for name, field in spec.settings_form_class().base_fields.items():
        setting = copy.deepcopy(field)
        setting.label = field.label or name.replace("_", " ").capitalize()
        setting.help_text = setting.help_text or f"{spec.label}'s {setting.label.lower()} for this account."
        fields[SETTING_PREFIX + name] = setting
    return type(f"{spec.key.title()}ConnectionForm", (ConnectionForm,), fields)


def vendor_fields(vendor: str) -> list[Any]:
    vendor_admin = vendor_admins().get(vendor)
    return list(vendor_admin.connection_fields) if vendor_admin else []


@method_decorator(sensitive_post_parameters(), name="changeform_view")
@admin.register(Connection)
class ConnectionAdmin(AuditedAdmin, ClientScopedAdmin):
    list_display = ["client", "vendor", "status_badge", "last_checked_at", "check_result", "environment"]
    list_filter = [ClientFilter, "vendor", "status", "environment"]
    list_select_related = ["client"]
    search_fields = ["client__name", "vendor"]
    autocomplete_fields = ["client"]
    actions = ["verify_connections", "disable_connections", "reset_to_draft"]

    class Media:
        js = [
            "integrations/connection_form.js",
            "integrations/reveal.js",
            "integrations/sandbox_fill.js",
            "integrations/copy.js",
        ]

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # Rendered here, inside rendering_for(): vendor displays show full URLs (e.g. Vibes' callback URL).
        with rendering_for(request):
            response = super().changeform_view(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
        return response

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        queryset = super().get_queryset(request)
        # The list never needs secrets: don't decrypt them for it.
        match = request.resolver_match
        on_list = match is not None and (match.url_name or "").endswith("changelist")
        return queryset.defer("secrets") if on_list else queryset

    def _vendor_spec(self, request: HttpRequest, obj: Connection | None) -> VendorSpec | None:
        vendor = obj.vendor if obj else request.POST.get("vendor") or request.GET.get("vendor")
        return VENDORS.get(vendor or "")

    def get_form(
        self, request: HttpRequest, obj: Connection | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        spec = self._vendor_spec(request, obj)
        kwargs["form"] = connection_form_for(spec)
        kwargs["fields"] = None
        # ModelAdmin.get_form subclasses the form it is given, here always a ConnectionForm.
        form = cast("type[ConnectionForm]", super().get_form(request, obj, change, **kwargs))
        if spec is not None and not is_site_admin(request.user):
            # Where the secrets are sent (a region picks a host) is a site admin's decision.
            form.locked_settings = spec.site_admin_settings
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Connection | None = None) -> _FieldsetSpec:
        spec = self._vendor_spec(request, obj)
        fieldsets: list[tuple[_StrOrPromise | None, _FieldOpts]] = [
            (None, {"fields": ("client", "vendor", "environment", "base_url")})
        ]
        if obj is not None:
            if extra := vendor_fields(obj.vendor):
                fieldsets.append((obj.spec.label, {"fields": tuple(extra)}))
            fieldsets.append(("Status", {"fields": tuple(STATUS_FIELDS)}))
        if spec is None:
            fieldsets.append(("Secrets", {"fields": (), "description": "Choose the vendor to enter its secrets."}))
            return fieldsets
        secret_fields = [SECRET_PREFIX + s.name for s in spec.secrets]
        if obj is not None:
            secret_fields.insert(0, "stored_secrets")
        setting_fields = [SETTING_PREFIX + name for name in spec.settings_form_class().base_fields]
        fieldsets += [
            ("Secrets", {"fields": tuple(secret_fields), "description": "Write-only: blank keeps the stored value."}),
            (f"{spec.label} settings", {"fields": tuple(setting_fields)}),
        ]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Connection | None = None) -> list[Any]:
        readonly: list[Any] = [*STATUS_FIELDS, "stored_secrets"]
        if obj is not None:
            readonly += ["client", "vendor", *vendor_fields(obj.vendor)]
        if not is_site_admin(request.user):
            # Where the secrets are sent is a site admin's decision: a changed URL would carry them elsewhere.
            readonly += ["environment", "base_url"]
        return readonly

    def get_urls(self) -> list[Any]:
        extra = [url for vendor_admin in vendor_admins().values() for url in vendor_admin.connection_urls]
        return [*(url(self) for url in extra), *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Connection | None = None,
    ) -> HttpResponse:
        spec = self._vendor_spec(request, obj)
        # A new connection may become a sandbox one only where its environment can be chosen (site admins); a client
        # user's new connection gets the default environment, so the sandbox's secrets are not offered to it.
        new_environment = "" if is_site_admin(request.user) else Connection._meta.get_field("environment").default
        fill = sandbox_fill(
            spec.key if spec else "",
            obj.environment if obj else new_environment,
            secret_prefix=SECRET_PREFIX,
            setting_prefix=SETTING_PREFIX,
        )
        context.update(sandbox_fill=fill, sandbox_fill_json=json.dumps(fill))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request: HttpRequest, obj: Connection, form: Any, change: bool) -> None:
        if "_verify" not in request.POST or form.spec is None:
            super().save_model(request, obj, form, change)
            return
        # "Save and verify": the entered secrets are stored only if the vendor does not refuse them.
        obj.secrets = stored_secrets_of(obj)
        super().save_model(request, obj, form, change)
        outcome = verified_by(request, obj, entered=form.entered_secrets())
        report_outcomes(self, request, [outcome])

    def response_change(self, request: HttpRequest, obj: Connection) -> Any:
        if "_verify" in request.POST:
            return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[obj.pk]))
        return super().response_change(request, obj)

    def response_add(self, request: HttpRequest, obj: Connection, post_url_continue: str | None = None) -> Any:
        if "_verify" in request.POST:
            return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[obj.pk]))
        missing = connections.missing_secrets(obj)
        if missing and "_addanother" not in request.POST:
            self.message_user(
                request, f"Enter the missing secrets before verifying: {', '.join(missing)}.", messages.WARNING
            )
            return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description="status", ordering="status")
    def status_badge(self, connection: Connection) -> str:
        # Coloured by portal.css (no style attribute: the Content-Security-Policy refuses inline styles).
        return format_html('<span class="status-badge status-{}">{}</span>', connection.status, connection.status)

    @admin.display(description="last check's result")
    def check_result(self, connection: Connection) -> str:
        return clipped(connection.last_check_result, 80)

    @admin.display(description="stored secrets")
    def stored_secrets(self, connection: Connection) -> str:
        if connection.secrets_unreadable:
            return "The stored secrets cannot be decrypted (their key is no longer configured) — re-enter them."
        return format_html_join(
            "",
            "<div>{}: <code>{}</code></div>",
            ((s.label, connections.mask(connection.secret(s.name))) for s in connection.spec.secrets),
        )

    @admin.action(description="Verify the selected connections with their vendors", permissions=["change"])
    def verify_connections(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        outcomes = ((c, verified_by(request, c)) for c in queryset.select_related("client"))
        report_outcomes(self, request, (Outcome(o.ok, f"{c}: {o.message}", error=not o.ok) for c, o in outcomes))

    @admin.action(description="Disable the selected connections", permissions=["change"])
    def disable_connections(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        count = queryset.count()
        audit.record_each(request.user, audit.Action.DISABLED, queryset, lambda: connections.disable(queryset))
        self.message_user(
            request,
            ngettext(
                "Disabled %(count)d connection. No calls will be made through it.",
                "Disabled %(count)d connections. No calls will be made through them.",
                count,
            )
            % {"count": count},
        )

    @admin.action(description="Return the selected connections to draft", permissions=["change"])
    def reset_to_draft(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        count = queryset.count()
        audit.record_each(
            request.user, audit.Action.RESET_TO_DRAFT, queryset, lambda: connections.reset_to_draft(queryset)
        )
        self.message_user(
            request,
            ngettext(
                "%(count)d connection back to draft: verify it to activate.",
                "%(count)d connections back to draft: verify them to activate.",
                count,
            )
            % {"count": count},
        )


def stored_secrets_of(connection: Connection) -> dict[str, Any]:
    """The secrets as stored now ({} for a new connection), before a form's entries are merged in."""
    if connection.pk is None:
        return {}
    stored = Connection.objects.get(pk=connection.pk)
    return {} if stored.secrets_unreadable else dict(stored.secrets)


def verified_by(request: HttpRequest, connection: Connection, entered: dict[str, str] | None = None) -> Outcome:
    """Verify a connection for a person (with the secrets just entered, kept only if not refused), recorded in the
    audit trail with its outcome and any status change."""
    before = audit.connection_state(connection)
    verify = connections.verify if entered is None else partial(connections.save_and_verify, entered=entered)
    outcome = verify(connection)
    after = audit.connection_state(connection)
    audit.record(request.user, audit.Action.VERIFIED, connection, before, after, note=outcome.message)
    return outcome
