"""The portal's admin site: the index page is the dashboard."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from portal.dashboard import build_dashboard


class PortalAdminSite(admin.AdminSite):
    site_header = "Annex Cloud Integration Portal"
    site_title = "Integration Portal"
    index_title = "Dashboard"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"dashboard": build_dashboard(request.user), **(extra_context or {})}
        return super().index(request, extra_context=context)
