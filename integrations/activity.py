"""What the dashboard charts: series the portal counts per hour as things happen (integrations/rollups.py) — vendor
calls, messages, callbacks, points, and whatever a vendor adds — summed per hour or per day of the viewer's zone, each
linked to the admin list of the rows it counts.

A vendor adds its own series with `activity_series()` in its flows module (e.g. First Orion's pushes, counted by a
`rollups.counted(...)` where its flow settles a batch), and its own lines of trouble with `dashboard_troubles` in
its `VendorAdmin` (they link to its admin pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

from django.urls import reverse

from integrations import rollups


@dataclass(frozen=True)
class CountedIn:
    """The admin list of the rows a chart counts: its changelist's URL name, the filters (query parameters the list
    supports) that select them, and the time column the chart's window applies to (`<column>__gte=<window start>`,
    a lookup Django's admin applies to any list)."""

    changelist: str
    filters: tuple[tuple[str, str], ...] = ()
    time_column: str = ""

    def url(self, since: datetime, **more: str) -> str:
        params = dict(self.filters) | more
        if self.time_column:
            params[f"{self.time_column}__gte"] = since.astimezone(UTC).isoformat()
        return f"{reverse(self.changelist)}?{urlencode(params)}"


@dataclass(frozen=True)
class ActivitySeries:
    """One chart: the rollup `series` (of one `outcome`, or all when blank) per bucket, as its number of events
    ("count") or the sum of their values ("total", e.g. points), less those of the `net_of` outcome (e.g. awards
    reversed since, counted in the hour of their award); `counted_in`: the list of the rows it counts."""

    title: str
    series: str
    outcome: str = ""
    value: Literal["count", "total"] = "count"
    unit: str = ""
    net_of: str = ""
    counted_in: CountedIn | None = None


@dataclass(frozen=True)
class Trouble:
    """One line of the dashboard's "Needs attention" that a vendor adds (e.g. a failed First Orion push)."""

    client_id: int
    label: str
    url: str
    detail: str


def core_series() -> list[ActivitySeries]:
    return [
        ActivitySeries(
            "Messages sent",
            rollups.MESSAGES,
            outcome="sent",
            counted_in=CountedIn("admin:members_outboundmessage_changelist", (("status__exact", "sent"),), "sent_at"),
        ),
        ActivitySeries(
            "Callbacks received",
            rollups.CALLBACKS,
            counted_in=CountedIn("admin:integrations_webhookevent_changelist", time_column="received_at"),
        ),
        ActivitySeries(
            "Points awarded",
            rollups.POINTS,
            outcome=rollups.CREDIT_APPLIED,
            value="total",
            unit="points",
            net_of=rollups.CREDIT_REVERSED,
            # The credits applied in the window that still stand, which add up to the chart: support asks "which
            # awards make up these points?", and a list of credits and their reversals' debits would not (a debit is
            # dated when the award was reversed, perhaps outside the window, while the chart nets it in the award's
            # hour). A reversed credit is listed under the list's "reversed: yes" filter.
            counted_in=CountedIn(
                "admin:members_pointstransaction_changelist",
                (("activity__exact", "credit"), ("status__exact", "applied"), ("reversed", "no")),
                "created_at",
            ),
        ),
    ]
