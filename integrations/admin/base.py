"""What every admin of the portal builds on: tenancy-scoped base classes and filters, reporting outcomes, and the
extension points through which each vendor's own admin module (integrations/<vendor>/admin.py, exporting `ADMIN`)
adds its pages, fields, actions and inlines to the shared admins."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from integrations import audit
from integrations.activity import Trouble
from integrations.connections import validate_secret
from integrations.hooks import ExtendsAdmin, hooks
from integrations.models import Client, Connection
from integrations.outcome import Outcome, outcome_of
from integrations.tenancy import is_site_admin, scope_to_clients, visible_clients
from members.changes import changed_by

T = TypeVar("T")
# Up to this many objects, a bulk action that calls a vendor runs at once and reports per object.
SYNC_ACTION_LIMIT = 20


def secret_input(label: str, *, required: bool, help_text: str = "") -> forms.CharField:
    """A write-only input for a secret: never rendered back, never autofilled."""
    return forms.CharField(
        label=label,
        required=required,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 50}),
        help_text=help_text,
        validators=[validate_secret],
    )


class ClientFilter(admin.SimpleListFilter):
    """A client filter that offers only the clients the user may see."""

    title = "client"
    parameter_name = "client"
    client_path = "client"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(c.pk), c.name) for c in visible_clients(request.user)]

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
        return self.scope_to_user(super().get_queryset(request), request.user)

    def scope_to_user(self, queryset: QuerySet, user: Any) -> QuerySet:
        """The rows the user may see; a log's admin names them by its connections' ids instead (no join)."""
        return scope_to_clients(queryset, user, self.client_path)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.related_model is Client:
            kwargs["queryset"] = visible_clients(request.user)
        elif db_field.related_model is Connection:
            kwargs["queryset"] = scope_to_clients(Connection.objects.defer("secrets"), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def response_action(
        self, request: HttpRequest, queryset: QuerySet, *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        """An action on the list (a vendor's "Refresh from Annex Cloud", "Reverse the award…", …) changes members as
        the person who chose it, named with the action on their timelines (members/changes.py); a flow that names
        itself inside (a review's award, a callback reprocessed) keeps its own name."""
        action = self.get_actions(request).get(request.POST.get("action", ""))
        what = f" with “{action[2]}”" if action else ""
        where = f" on the {self.opts.verbose_name_plural} list"
        with changed_by(f"{request.user.get_username()}{what}{where}"):
            return super().response_action(request, queryset, *args, **kwargs)


class AuditedAdmin(admin.ModelAdmin):
    """Records each save and delete a person makes here in the audit trail (integrations/audit.py): the fields that
    changed, secrets by name only. Put it before the other admin base classes."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # The row as stored, read before the edit is saved over it; compared once inlines and m2m are saved too.
        obj._audit_before = audit.stored_state(obj) if change else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        action = audit.Action.CHANGED if change else audit.Action.CREATED
        audit.record(request.user, action, obj, getattr(obj, "_audit_before", {}), audit.state_of(obj))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit.record(request.user, audit.Action.DELETED, obj, {}, {})
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            audit.record(request.user, audit.Action.DELETED, obj, {}, {})
        super().delete_queryset(request, queryset)


class ReadOnlyAdmin(ClientScopedAdmin):
    """Records written by the portal itself — history (job runs, vendor calls, webhook events, pushes, reviews):
    viewable, never edited nor deleted by hand. Decisions about them are actions (run again, reprocess, resend,
    reverse); retention prunes them, not an admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Reporting outcomes ------------------------------------------------------------------------------------------


def report_outcomes(model_admin: admin.ModelAdmin, request: HttpRequest, outcomes: Iterable[Outcome]) -> None:
    """One admin message per distinct outcome: green when it worked, a warning for an answer such as "not a
    member", red with what to do for an error. Identical outcomes of several objects are one line that says how many
    (never one line that reads as if it were about one)."""
    for outcome, count in Counter(outcomes).items():
        level = messages.SUCCESS if outcome.ok else messages.ERROR if outcome.error else messages.WARNING
        text = outcome.message if count == 1 else f"{outcome.message} ({count} of the selected, the same answer)"
        model_admin.message_user(request, text, level)


def first_few(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, verb: str) -> list[Any]:
    """The first SYNC_ACTION_LIMIT objects of a selection, saying so when more were selected."""
    objects = list(queryset[: SYNC_ACTION_LIMIT + 1])
    if len(objects) > SYNC_ACTION_LIMIT:
        model_admin.message_user(
            request,
            f"Only the first {SYNC_ACTION_LIMIT} were {verb} now: select at most {SYNC_ACTION_LIMIT} at a time.",
            messages.WARNING,
        )
    return objects[:SYNC_ACTION_LIMIT]


def run_for_each(
    model_admin: admin.ModelAdmin, request: HttpRequest, subjects: Iterable[T], flow: Callable[[T], Outcome]
) -> list[Outcome]:
    """Run a flow on each subject now and report each outcome (vendor errors and missing set-up included)."""
    outcomes = [outcome_of(flow, subject) for subject in subjects]
    report_outcomes(model_admin, request, outcomes)
    return outcomes


# --- Absolute URLs and copy buttons ------------------------------------------------------------------------------

# The request an admin page is rendered for, so that displays which are functions of an object alone (a VendorAdmin's
# connection_fields) can show a full URL with the host the person uses, e.g. a callback URL to give a vendor.
_rendering_for: ContextVar[HttpRequest | None] = ContextVar("admin_request", default=None)


@contextmanager
def rendering_for(request: HttpRequest) -> Iterator[None]:
    token = _rendering_for.set(request)
    try:
        yield
    finally:
        _rendering_for.reset(token)


def rendering_request() -> HttpRequest | None:
    """The request of the admin page being rendered (inside rendering_for()), for displays that page or link."""
    return _rendering_for.get()


def absolute_url(path: str) -> str:
    """The full URL of a path on the portal as the person sees it (the path alone outside a rendered admin page)."""
    request = _rendering_for.get()
    return request.build_absolute_uri(path) if request is not None else path


def copy_button(target_id: str, label: str = "Copy") -> SafeString:
    """A button that copies the text of the element with this id (integrations/copy.js; no inline script)."""
    return format_html(
        '<button type="button" class="button copy-button" data-copy-target="{}">{}</button>', target_id, label
    )


# --- Pages of one client -----------------------------------------------------------------------------------------


def client_for_site_admin(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> Client:
    if not is_site_admin(request.user):
        raise PermissionDenied
    return get_object_or_404(model_admin.get_queryset(request), pk=pk)


def render_client_page(
    model_admin: admin.ModelAdmin, request: HttpRequest, client: Client, template: str, **context: Any
) -> TemplateResponse:
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, "client": client, **context}
    return TemplateResponse(request, template, context)


# --- Vendor extension points -------------------------------------------------------------------------------------

ClientView = Callable[[admin.ModelAdmin, HttpRequest, int], HttpResponse]


@dataclass(frozen=True)
class ClientPage:
    """A vendor page of a client, reached by a button on the client's page (site admins only)."""

    name: str  # URL name: admin:integrations_client_<name>
    label: str
    view: ClientView


@dataclass(frozen=True)
class VendorAdmin:
    """What a vendor adds to the shared admins; each vendor's admin.py exports one as `ADMIN`."""

    client_pages: tuple[ClientPage, ...] = ()
    # Records of a client this vendor keeps, edited on the client's page (e.g. Attentive's sign-up sources).
    client_inlines: tuple[type[admin.options.InlineModelAdmin], ...] = ()
    # Read-only displays (functions of a connection, with @admin.display) on this vendor's connection page.
    connection_fields: tuple[Callable[[Connection], Any], ...] = ()
    connection_urls: tuple[Any, ...] = ()
    member_actions: tuple[Callable[..., Any], ...] = ()
    member_inlines: tuple[type[admin.options.InlineModelAdmin], ...] = ()
    segment_actions: tuple[Callable[..., Any], ...] = ()
    # What needs attention on the dashboard since a moment (all clients; the dashboard keeps the viewer's).
    dashboard_troubles: Callable[[datetime], Iterable[Trouble]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@cache
def vendor_admins() -> dict[str, VendorAdmin]:
    return {key: module.ADMIN for key, module in hooks(ExtendsAdmin).items()}


def collected(part: str) -> list[Any]:
    """One part (e.g. `member_actions`) of every vendor's admin, in registry order."""
    return [item for vendor_admin in vendor_admins().values() for item in getattr(vendor_admin, part)]


def model_url_name(model: type[Model], suffix: str) -> str:
    return f"{model._meta.app_label}_{model._meta.model_name}_{suffix}"


def clipped(text: str, length: int = 60) -> str:
    """Long text in a list cell: at most `length` characters and one line wide (portal.css), the whole on hover."""
    text = text or ""
    shown = text if len(text) <= length else f"{text[: length - 1]}…"
    return clipped_as(text, shown) if text else "—"


def clipped_as(whole: str, shown: str) -> str:
    return format_html('<span class="clipped" title="{}">{}</span>', whole, shown)
