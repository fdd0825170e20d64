"""Times as the viewer reads them: in their client's time zone when they see one client (or all they see share one),
else UTC — the dashboard's and the schedule preview's rule — always with the zone named, never a raw
"23:06:59.990148+00:00"."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from integrations.tenancy import visible_clients

UTC_ZONE = ZoneInfo("UTC")


def viewer_zone(user: Any) -> ZoneInfo:
    zones = set(visible_clients(user).order_by().values_list("time_zone", flat=True).distinct()[:2])
    return ZoneInfo(zones.pop()) if len(zones) == 1 else UTC_ZONE


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """ "2025-03-01 14:03:22 EST": the moment in `zone`, to the second, with the zone's abbreviation."""
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}"
