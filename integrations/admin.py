"""Admin for the vendor side. Every admin here is scoped to the user's clients (list, change, delete, actions,
autocomplete and filters), and connection secrets are write-only and masked."""

from __future__ import annotations

import copy
import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from integrations import connections as connection_flows
from integrations.admin_forms import AnnexCloudCredentialsForm, AttentiveActivationForm
from integrations.annexcloud.api import partner_access_token
from integrations.attentive import flows as attentive
from integrations.models import (
    INBOUND_VENDORS,
    ApiToken,
    Client,
    Connection,
    JobRun,
    SignUpSource,
    VendorCall,
    WebhookEvent,
)
from integrations.tenancy import is_site_admin, scope_to_clients, visible_clients
from integrations.vendors import VENDORS, VendorSpec
from integrations.verification import verify_connection
from integrations.vibes import callbacks as vibes_callbacks
from portal.celery import app as celery_app


class ClientFilter(admin.SimpleListFilter):
    """A client filter that offers only the clients the user may see."""

    title = "client"
    parameter_name = "client"
    client_path = "client"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[int, str]]:
        return [(c.pk, c.name) for c in visible_clients(request.user)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(**{self.client_path: self.value()})
        return queryset


class ConnectionClientFilter(ClientFilter):
    client_path = "connection__client"


class ClientScopedAdmin(admin.ModelAdmin):
    """Base for admins of rows that belong to a client, reached through `client_path`."""

    client_path = "client"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_to_clients(super().get_queryset(request), request.user, self.client_path)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Client:
            kwargs["queryset"] = visible_clients(request.user)
        elif db_field.related_model is Connection:
            kwargs["queryset"] = scope_to_clients(Connection.objects.defer("secrets"), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdmin(ClientScopedAdmin):
    """Records written by the portal itself: viewable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Clients ----------------------------------------------------------------------------------------------


class SignUpSourceInline(admin.TabularInline):
    model = SignUpSource
    extra = 0
    fields = ["source_id", "name", "is_default"]


class ConnectionInline(admin.TabularInline):
    """The client's connections at a glance; each links to its own page (secrets are never shown here)."""

    model = Connection
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ["vendor", "environment", "status", "last_checked_at", "last_check_result"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        return super().get_queryset(request).defer("secrets")


@admin.register(Client)
class ClientAdmin(ClientScopedAdmin):
    change_form_template = "admin/integrations/client/change_form.html"
    inlines = [ConnectionInline, SignUpSourceInline]
    client_path = ""
    list_display = ["name", "slug", "site_id", "default_region", "active", "connection_summary"]
    list_filter = ["active"]
    search_fields = ["name", "slug", "site_id"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["users"]

    def get_readonly_fields(self, request: HttpRequest, obj: Client | None = None) -> list[str]:
        # Client users may look at their client; only site admins change who belongs to it or switch it off.
        return [] if is_site_admin(request.user) else ["slug", "active", "users"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_site_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Client | None = None) -> bool:
        return is_site_admin(request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return super().get_queryset(request).prefetch_related("connections")

    @admin.display(description="connections")
    def connection_summary(self, client: Client) -> str:
        return ", ".join(f"{c.spec.label}: {c.status}" for c in client.connections.all()) or "—"

    def get_urls(self) -> list[Any]:
        def view(name: str, func: Any) -> Any:
            return path(f"<int:pk>/{name}/", self.admin_site.admin_view(func), name=f"integrations_client_{name}")

        return [
            view("attentive", self.activate_attentive_view),
            view("annex_cloud", self.annex_cloud_view),
            *super().get_urls(),
        ]

    def _client_for_site_admin(self, request: HttpRequest, pk: int) -> Client:
        if not is_site_admin(request.user):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def _page(self, request: HttpRequest, client: Client, template: str, **context: Any) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.opts, "client": client, **context}
        return TemplateResponse(request, template, context)

    @method_decorator(sensitive_post_parameters())
    def activate_attentive_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The site admin's first journey: enter Attentive's credentials and sign-up sources, verified at once."""
        client = self._client_for_site_admin(request, pk)
        connection = attentive.connection_of(client)
        has_key = bool(connection and connection.secret("api_key"))
        if request.method == "POST":
            form = AttentiveActivationForm(request.POST, has_api_key=has_key)
            if form.is_valid():
                outcome = attentive.activate(
                    client,
                    api_key=form.cleaned_data["api_key"],
                    legacy_token=form.cleaned_data["legacy_token"],
                    sign_up_sources=form.cleaned_data["sign_up_sources"],
                    environment=form.cleaned_data["environment"],
                )
                if outcome.ok:
                    self.message_user(request, f"Attentive is active for {client}. {outcome.message}")
                    return HttpResponseRedirect(reverse("admin:integrations_client_change", args=[client.pk]))
                # The connection stays draft with the stored credentials; the form shows again to correct them.
                self.message_user(request, f"Attentive was not activated. {outcome.message}", messages.ERROR)
                connection = attentive.connection_of(client)
        else:
            sources = SignUpSource.objects.filter(client=client).order_by("-is_default", "pk")
            initial = {
                "sign_up_sources": "\n".join(f"{s.source_id}, {s.name}" for s in sources),
                "environment": connection.environment if connection else Connection.Environment.PRODUCTION,
            }
            form = AttentiveActivationForm(initial=initial, has_api_key=has_key)
        return self._page(
            request,
            client,
            "admin/integrations/client/activate_attentive.html",
            title=f"Activate Attentive for {client}",
            form=form,
            connection=connection,
        )

    @method_decorator(sensitive_post_parameters())
    def annex_cloud_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The client's Annex Cloud site credentials, from which the partner access token is derived."""
        client = self._client_for_site_admin(request, pk)
        connection, _ = Connection.objects.get_or_create(client=client, vendor="annex_cloud")
        has_secrets = bool(connection.secret("loyalty_token"))
        form = AnnexCloudCredentialsForm(
            request.POST or None, initial={"site_id": client.site_id}, has_secrets=has_secrets
        )
        if request.method == "POST" and form.is_valid():
            client.site_id = form.cleaned_data["site_id"]
            client.save(update_fields=["site_id"])
            connection_flows.update_secrets(
                connection,
                {"loyalty_token": form.cleaned_data["loyalty_token"], "api_secret": form.cleaned_data["api_secret"]},
            )
            connection.save()
            self.message_user(request, f"Annex Cloud site credentials saved for {client}.")
            return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[connection.pk]))
        return self._page(
            request,
            client,
            "admin/integrations/client/annex_cloud.html",
            title=f"Annex Cloud site credentials of {client}",
            form=form,
        )


# --- Connections -------------------------------------------------------------------------------------------


SECRET_PREFIX = "secret__"
SETTING_PREFIX = "setting__"


class ConnectionForm(forms.ModelForm):
    """Connection fields plus, once the vendor is known, one password input per secret (blank keeps the stored
    value) and one typed input per vendor setting."""

    spec: VendorSpec | None = None
    base_url = forms.URLField(
        assume_scheme="https",
        required=False,
        help_text="Leave blank for the vendor's default for the chosen environment.",
    )

    class Meta:
        model = Connection
        fields = ["client", "vendor", "environment", "base_url"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.spec is None:
            return
        for name, field in self.fields.items():
            if name.startswith(SETTING_PREFIX):
                field.initial = self.instance.settings.get(name.removeprefix(SETTING_PREFIX), field.initial)
            elif name.startswith(SECRET_PREFIX):
                stored = self.instance.secret(name.removeprefix(SECRET_PREFIX)) if self.instance.pk else ""
                field.help_text = f"{field.help_text} Stored: {connection_flows.mask(stored)}. Leave blank to keep."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.spec is not None:
            raw = {k.removeprefix(SETTING_PREFIX): v for k, v in cleaned.items() if k.startswith(SETTING_PREFIX)}
            try:
                cleaned["settings"] = self.spec.clean_settings({k: v for k, v in raw.items() if v not in (None, "")})
            except forms.ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    def save(self, commit: bool = True) -> Connection:
        connection: Connection = super().save(commit=False)
        if self.spec is not None:
            connection.settings = self.cleaned_data.get("settings", {})
            secrets = {
                k.removeprefix(SECRET_PREFIX): v for k, v in self.cleaned_data.items() if k.startswith(SECRET_PREFIX)
            }
            connection_flows.update_secrets(connection, secrets)
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
            help_text=secret.help_text,
        )
    for name, field in spec.settings_form_class().base_fields.items():
        setting = copy.deepcopy(field)
        setting.label = field.label or name.replace("_", " ").capitalize()
        fields[SETTING_PREFIX + name] = setting
    return type(f"{spec.key.title()}ConnectionForm", (ConnectionForm,), fields)


@method_decorator(sensitive_post_parameters(), name="changeform_view")
@admin.register(Connection)
class ConnectionAdmin(ClientScopedAdmin):
    list_display = ["client", "vendor", "environment", "status_badge", "last_checked_at", "last_check_result"]
    list_filter = [ClientFilter, "vendor", "status", "environment"]
    list_select_related = ["client"]
    search_fields = ["client__name", "vendor"]
    autocomplete_fields = ["client"]
    actions = ["verify_connections", "disable_connections", "reset_to_draft"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        queryset = super().get_queryset(request)
        # The list never needs secrets: don't decrypt them for it.
        return queryset.defer("secrets") if request.resolver_match.url_name.endswith("changelist") else queryset

    def _vendor_spec(self, request: HttpRequest, obj: Connection | None) -> VendorSpec | None:
        vendor = obj.vendor if obj else request.POST.get("vendor") or request.GET.get("vendor")
        return VENDORS.get(vendor or "")

    def get_form(
        self, request: HttpRequest, obj: Connection | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        kwargs["form"] = connection_form_for(self._vendor_spec(request, obj))
        kwargs["fields"] = None
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Connection | None = None) -> list[tuple[str | None, dict]]:
        spec = self._vendor_spec(request, obj)
        main = ["client", "vendor", "environment", "base_url"]
        fieldsets: list[tuple[str | None, dict]] = [(None, {"fields": main})]
        if obj is not None and obj.vendor in INBOUND_VENDORS:
            fieldsets.append(("Callbacks", {"fields": ["callback_url"]}))
        if obj is not None:
            fieldsets.append(
                ("Status", {"fields": ["status", "last_checked_at", "last_check_result", "consecutive_failures"]})
            )
        if spec is None:
            fieldsets.append(("Secrets", {"fields": [], "description": "Choose the vendor to enter its secrets."}))
            return fieldsets
        secret_fields = [SECRET_PREFIX + s.name for s in spec.secrets]
        if obj is not None:
            secret_fields.insert(0, "stored_secrets")
            if obj.vendor == "annex_cloud":
                secret_fields.append("partner_access_token")
        setting_fields = [SETTING_PREFIX + name for name in spec.settings_form_class().base_fields]
        fieldsets += [
            ("Secrets", {"fields": secret_fields, "description": "Write-only: blank keeps the stored value."}),
            (f"{spec.label} settings", {"fields": setting_fields}),
        ]
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Connection | None = None) -> list[str]:
        readonly = ["status", "last_checked_at", "last_check_result", "consecutive_failures", "stored_secrets"]
        readonly += ["partner_access_token", "callback_url"]
        if obj is not None:
            readonly += ["client", "vendor"]
        if not is_site_admin(request.user):
            # Where the secrets are sent is a site admin's decision: a changed URL would carry them elsewhere.
            readonly += ["environment", "base_url"]
        return readonly

    def formfield_for_choice_field(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_choice_field(db_field, request, **kwargs)
        if db_field.name == "vendor":
            # Picking the vendor reloads the add form with that vendor's secret and setting fields.
            field.widget.attrs["onchange"] = "window.location.search = '?vendor=' + encodeURIComponent(this.value)"
        return field

    def response_add(self, request: HttpRequest, obj: Connection, post_url_continue: str | None = None) -> Any:
        missing = connection_flows.missing_secrets(obj)
        if missing and "_addanother" not in request.POST:
            self.message_user(
                request, f"Enter the missing secrets before verifying: {', '.join(missing)}.", messages.WARNING
            )
            return HttpResponseRedirect(reverse("admin:integrations_connection_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    @admin.display(description="status", ordering="status")
    def status_badge(self, connection: Connection) -> str:
        colours = {"active": "#2e7d32", "failing": "#c62828", "draft": "#757575", "disabled": "#424242"}
        return format_html('<b style="color:{}">{}</b>', colours.get(connection.status, "#000"), connection.status)

    @admin.display(description="stored secrets")
    def stored_secrets(self, connection: Connection) -> str:
        return format_html_join(
            "",
            "<div>{}: <code>{}</code></div>",
            ((s.label, connection_flows.mask(connection.secret(s.name))) for s in connection.spec.secrets),
        )

    @admin.display(description="callback URL")
    def callback_url(self, connection: Connection) -> str:
        if not connection.inbound_token:
            return "—"
        url = reverse("vibes-callback", args=[connection.inbound_token])
        return format_html("<code>{}</code><div class='help'>Give Vibes this URL (with your host).</div>", url)

    @admin.display(description="partner access token")
    def partner_access_token(self, connection: Connection) -> str:
        if connection.pk is None or connection.vendor != "annex_cloud":
            return "—"
        token = partner_access_token(connection.secret("loyalty_token"), connection.client.site_id)
        if not token:
            return "Set the client's site id and the loyalty token to derive it."
        url = reverse("admin:integrations_connection_partner_token", args=[connection.pk])
        return format_html(
            '<code data-partner-token>{}</code> <button type="button" class="button" data-reveal-url="{}" '
            "onclick=\"fetch(this.dataset.revealUrl,{{credentials:'same-origin'}}).then(r=>r.json())"
            '.then(d=>{{this.previousElementSibling.textContent=d.token;this.remove();}})">Reveal</button>',
            connection_flows.mask(token),
            url,
        )

    def get_urls(self) -> list[Any]:
        reveal = path(
            "<int:pk>/partner-token/",
            self.admin_site.admin_view(self.partner_token_view),
            name="integrations_connection_partner_token",
        )
        return [reveal, *super().get_urls()]

    @method_decorator(never_cache)
    def partner_token_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The unmasked partner access token, for site admins only (fetched by the Reveal button)."""
        if not is_site_admin(request.user):
            return JsonResponse({"error": "Only site admins can reveal the partner access token."}, status=403)
        connection = get_object_or_404(self.get_queryset(request), pk=pk, vendor="annex_cloud")
        token = partner_access_token(connection.secret("loyalty_token"), connection.client.site_id)
        return JsonResponse({"token": token})

    @admin.action(description="Verify the selected connections with their vendors", permissions=["change"])
    def verify_connections(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset.select_related("client"):
            outcome = verify_connection(connection)
            level = messages.SUCCESS if outcome.ok else messages.ERROR
            self.message_user(request, f"{connection}: {outcome.message}", level)

    @admin.action(description="Disable the selected connections", permissions=["change"])
    def disable_connections(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        count = queryset.update(status=Connection.Status.DISABLED)
        self.message_user(request, f"Disabled {count} connection(s). No calls will be made through them.")

    @admin.action(description="Return the selected connections to draft", permissions=["change"])
    def reset_to_draft(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        count = queryset.update(status=Connection.Status.DRAFT, consecutive_failures=0)
        self.message_user(request, f"{count} connection(s) back to draft: verify them to activate.")


# --- Vendor calls, job runs, API tokens -----------------------------------------------------------------------


@admin.register(VendorCall)
class VendorCallAdmin(ReadOnlyAdmin):
    client_path = "connection__client"
    list_display = ["created_at", "connection", "method", "url", "status_code", "error_type", "latency_ms", "attempt"]
    list_filter = [ConnectionClientFilter, "connection__vendor", "error_type", "method", "status_code"]
    list_select_related = ["connection__client"]
    search_fields = ["url", "error"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "connection",
        "created_at",
        "method",
        "url",
        "attempt",
        "request_headers",
        "request_body",
        "status_code",
        "response_body",
        "latency_ms",
        "error_type",
        "error",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[VendorCall]:
        return super().get_queryset(request).defer("connection__secrets")


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ["job", "client", "started_at", "finished_at", "outcome", "counts", "task_id"]
    list_filter = ["outcome", "job", ClientFilter]
    list_select_related = ["client"]
    search_fields = ["job", "task_id", "error"]
    date_hierarchy = "started_at"
    readonly_fields = ["job", "client", "task_id", "started_at", "finished_at", "outcome", "counts", "error"]
    actions = ["run_now"]

    @admin.action(description="Run the selected jobs again now")
    def run_now(self, request: HttpRequest, queryset: QuerySet[JobRun]) -> None:
        if not is_site_admin(request.user):
            self.message_user(request, "Only site admins can run jobs.", messages.ERROR)
            return
        queued = set()
        for run in queryset:
            key = (run.job, run.client_id)
            if key not in queued:
                celery_app.send_task(run.job, kwargs={"client_id": run.client_id} if run.client_id else {})
                queued.add(key)
        self.message_user(
            request, f"Queued {len(queued)} job(s); new runs appear in this list when the worker picks them up."
        )


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["client", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(ClientScopedAdmin):
    form = ApiTokenForm
    list_display = ["name", "client", "prefix", "created_at", "last_used_at", "revoked"]
    list_filter = [ClientFilter, "revoked"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        return ["client", "name", "prefix", "created_at", "last_used_at", "revoked"] if obj else []

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        obj.assign_new_key()
        obj.save()

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> Any:
        # The key is shown on this one page and nowhere else (not in a message cookie, not in the list).
        context = {**self.admin_site.each_context(request), "token": obj, "key": obj.issued_key, "opts": self.opts}
        response = TemplateResponse(request, "admin/integrations/apitoken/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.update(revoked=True)
        self.message_user(request, f"Revoked {count} token(s).")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    client_path = "connection__client"
    list_display = ["received_at", "connection", "event_type", "event_id", "status", "outcome"]
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
        return event.error or "—"

    @admin.display(description="body as received")
    def pretty_body(self, event: WebhookEvent) -> str:
        try:
            text = json.dumps(json.loads(event.body), indent=2, ensure_ascii=False)
        except ValueError:
            text = event.body
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', text)

    @admin.action(description="Reprocess the selected failed events")
    def reprocess(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        if not is_site_admin(request.user):
            self.message_user(request, "Only site admins can reprocess events.", messages.ERROR)
            return
        counts = vibes_callbacks.reprocess(queryset)
        level = messages.SUCCESS if not counts["failed"] else messages.WARNING
        self.message_user(
            request, f"Reprocessed: {counts['processed']} applied, {counts['failed']} failed again.", level
        )
