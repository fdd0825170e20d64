"""The portal's admin site: the index page is the dashboard; its log-in asks site admins for a one-time code when
ADMIN_REQUIRE_2FA is on; the page django-axes shows a locked-out log-in."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_username
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django_otp.plugins.otp_totp.models import TOTPDevice

from integrations.tenancy import is_site_admin
from portal import navigation, zones
from portal.dashboard import build_dashboard
from portal.db_router import reads_from_replica
from portal.jobs_page import jobs_urls
from portal.two_factor import lacks_second_factor

# How a site admin gets an authenticator: on the server, by whoever runs the portal's commands.
ENROL = "run `manage.py add_totp_device {username}` on the server"


class PortalLoginForm(AdminAuthenticationForm):
    """The admin's log-in. With ADMIN_REQUIRE_2FA, a site admin also gives the current code of their authenticator
    app (TOTP), and the session is marked verified (django-otp). Client users log in with their password alone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if settings.ADMIN_REQUIRE_2FA:
            self.fields["otp_token"] = forms.CharField(
                label="One-time code",
                required=False,
                help_text="Site admins: the 6-digit code from your authenticator app.",
                widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # the password (and django-axes' lockout) first
        user = self.get_user()
        if settings.ADMIN_REQUIRE_2FA and is_site_admin(user):
            # django-otp's log-in signal marks the session verified by this device.
            # An attribute django-otp gives users (django-stubs' User does not know it).
            user.otp_device = verified_device(user, cleaned.get("otp_token", ""))  # type: ignore[attr-defined]
        return cleaned


def verified_device(user: Any, code: str) -> TOTPDevice:
    """The site admin's authenticator, if `code` is its current code; the device's own throttling (a growing wait
    after each wrong code) and its refusal of a code used before both apply."""
    name = user.get_username()
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None:
            raise forms.ValidationError(
                f"Site admins log in with a one-time code, and {name} has no authenticator yet: "
                f"{ENROL.format(username=name)}, and {name} scans the QR code it prints.",
                code="no_device",
            )
        if not code.strip():
            raise forms.ValidationError("Enter the one-time code from your authenticator app.", code="code_required")
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            raise forms.ValidationError("Too many wrong codes: wait a minute, then try again.", code="throttled")
        if not device.verify_token(code.strip()):
            raise forms.ValidationError("That code is wrong or expired: enter the current one.", code="wrong_code")
    return device


class PortalAdminSite(admin.AdminSite):
    site_header = "Annex Cloud Integration Portal"
    site_title = "Integration Portal"
    index_title = "Dashboard"
    login_form = PortalLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        """With ADMIN_REQUIRE_2FA, a site admin's session counts only once a one-time code verified it (a session
        from before it was turned on goes back to the log-in page)."""
        return super().has_permission(request) and not lacks_second_factor(request.user)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The sidebar and index in task sections (an app's own index page keeps Django's per-app list)."""
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:
            return app_list
        return navigation.grouped(app_list, site_admin=is_site_admin(request.user))

    def get_urls(self) -> list[Any]:
        choose_zone = path("time-zone/", self.admin_view(zones.choose_zone), name="choose_zone")
        return [choose_zone, *jobs_urls(self), *super().get_urls()]

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        """Every admin page's header offers the time zone chooser."""
        return {**super().each_context(request), "zone_choice": zones.zone_choice(request)}

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        window = request.GET.get("window", "24h")
        with reads_from_replica():  # the dashboard's aggregates never load the primary (issue 22)
            dashboard = build_dashboard(request.user, window, zones.chosen_zone(request))
        context = {"dashboard": dashboard, **(extra_context or {})}
        return super().index(request, extra_context=context)


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """django-axes' answer to a locked-out log-in (AXES_LOCKOUT_CALLABLE): its page in the portal's admin frame (the
    site's header and title), saying for how long and what to do."""
    context = {
        **admin.site.each_context(request),
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "username": get_client_username(request, credentials) or "",
        "cooloff_timedelta": settings.AXES_COOLOFF_TIME,
    }
    response = TemplateResponse(request, "admin/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
    return response.render()
