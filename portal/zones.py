"""Times as the viewer reads them: in their client's time zone when they see one client (or all they see share one),
else UTC — the dashboard's and the schedule preview's rule — always with the zone named, never a raw
"23:06:59.990148+00:00"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from integrations.tenancy import visible_clients
from portal.admin_replica import SAFE_METHODS
from portal.db_router import read_alias

UTC_ZONE = ZoneInfo("UTC")


def viewer_zone(user: Any, using: str = DEFAULT_DB_ALIAS) -> ZoneInfo:
    # One small aggregate, no DISTINCT: it runs on every admin page (ViewerZoneMiddleware), and the lists' query
    # checks look for DISTINCT scans. The clients share a zone when the smallest and largest names are the same.
    zones = visible_clients(user).using(using).order_by().aggregate(first=Min("time_zone"), last=Max("time_zone"))
    return ZoneInfo(zones["first"]) if zones["first"] is not None and zones["first"] == zones["last"] else UTC_ZONE


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """ "2025-03-01 14:03:22 EST": the moment in `zone`, to the second, with the zone's abbreviation."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"


class ViewerZoneMiddleware:
    """Admin pages render every time in the viewer's zone: Django's date formatting (lists, record pages, read-only
    fields) follows the active zone, and the project's format module (portal/formats) names it after the time.

    The API is left in UTC: DRF also converts to the active zone, and API clients should not see their answers' offsets
    change with who the token's user can see."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        # A page read (GET) takes the zone from the replica, as its lists do: the primary is not asked on every page.
        timezone.activate(viewer_zone(user, read_alias() if request.method in SAFE_METHODS else DEFAULT_DB_ALIAS))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
