"""The portal's admin site: the index page is the dashboard."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_username
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from portal.dashboard import build_dashboard


class PortalAdminSite(admin.AdminSite):
    site_header = "Annex Cloud Integration Portal"
    site_title = "Integration Portal"
    index_title = "Dashboard"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"dashboard": build_dashboard(request.user), **(extra_context or {})}
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
