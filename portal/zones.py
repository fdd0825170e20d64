"""Times as the viewer reads them: in the zone they chose for their session ("Time zone" in the admin's header), else
in their client's time zone when they see one client (or all they see share one), else UTC — the dashboard's and the
schedule preview's rule — always with the zone named, never a raw "23:06:59.990148+00:00".

The choice is kept on the session, not on a per-user row: it is a reading preference (a site admin looking at one
client's morning), and a session needs no table; a new log-in starts again from the client's zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from integrations.models import time_zone_names
from integrations.tenancy import visible_clients
from portal.admin_replica import SAFE_METHODS
from portal.db_router import read_alias

UTC_ZONE = ZoneInfo("UTC")

# The session key of the viewer's chosen zone (absent: the client's zone).
CHOSEN_ZONE = "viewer_zone"

# The header's choices: where the portal's clients and their support people mostly are. Any IANA name is accepted.
COMMON_ZONES = (
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Toronto",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


def viewer_zone(user: Any, using: str = DEFAULT_DB_ALIAS) -> ZoneInfo:
    # One small aggregate, no DISTINCT: it runs on every admin page (ViewerZoneMiddleware), and the lists' query
    # checks look for DISTINCT scans. The clients share a zone when the smallest and largest names are the same.
    zones = visible_clients(user).using(using).order_by().aggregate(first=Min("time_zone"), last=Max("time_zone"))
    return ZoneInfo(zones["first"]) if zones["first"] is not None and zones["first"] == zones["last"] else UTC_ZONE


def chosen_zone(request: HttpRequest) -> ZoneInfo | None:
    """The zone the viewer chose for this session, if any (a name no longer known is ignored, not an error page)."""
    name = request.session.get(CHOSEN_ZONE, "") if hasattr(request, "session") else ""
    return ZoneInfo(name) if name in time_zone_names() else None


def request_zone(request: HttpRequest, using: str = DEFAULT_DB_ALIAS) -> ZoneInfo:
    """The zone a page shows its times in: the viewer's choice, else their clients' zone (`viewer_zone`)."""
    return chosen_zone(request) or viewer_zone(request.user, using)


@require_POST
def choose_zone(request: HttpRequest) -> HttpResponse:
    """The header's "Time zone": keep the chosen zone on the session ("" goes back to the client's zone) and return
    to the page it was chosen on. A name that is not a zone is refused in words and changes nothing."""
    name = request.POST.get("zone", "").strip()
    if not name:
        request.session.pop(CHOSEN_ZONE, None)
    elif name in time_zone_names():
        request.session[CHOSEN_ZONE] = name
    else:
        messages.error(
            request, f"{name!r} is not a time zone: choose one from the list (an IANA name such as America/New_York)."
        )
    return HttpResponseRedirect(way_back(request))


def way_back(request: HttpRequest) -> str:
    """The page the choice was made on, if it is one of the portal's own (never an address elsewhere)."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    return target if target and safe else reverse("admin:index")


def zone_choice(request: HttpRequest) -> dict[str, Any]:
    """What the header's chooser shows: the zones, the chosen one ("" for the client's zone), and the zone times are
    read in now (the middleware's, so no query: with no choice it is the client's zone)."""
    chosen = chosen_zone(request)
    shown = timezone.get_current_timezone_name()
    choices = COMMON_ZONES if chosen is None or chosen.key in COMMON_ZONES else (*COMMON_ZONES, chosen.key)
    return {"zones": choices, "chosen": chosen.key if chosen else "", "shown": shown}


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """ "2025-03-01 14:03:22 EST": the moment in `zone`, to the second, with the zone's abbreviation."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"


class ViewerZoneMiddleware:
    """Admin pages render every time in the viewer's zone (their choice, else their clients'): Django's date
    formatting (lists, record pages, read-only fields) follows the active zone, and the project's format module
    (portal/formats) names it after the time.

    The API is left in UTC: DRF also converts to the active zone, and API clients should not see their answers' offsets
    change with who the token's user can see."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if request.path.startswith("/api/") or user is None or not user.is_authenticated:
            return self.get_response(request)
        # A page read (GET) takes the zone from the replica, as its lists do: the primary is not asked on every page.
        timezone.activate(request_zone(request, read_alias() if request.method in SAFE_METHODS else DEFAULT_DB_ALIAS))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
