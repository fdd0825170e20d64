"""What the dashboard charts: series the portal counts per hour as things happen (integrations/rollups.py) — vendor
calls, messages, callbacks, points, and whatever a vendor adds — summed per hour or per day of the viewer's zone.

A vendor adds its own series with `activity_series()` in its flows module (e.g. First Orion's pushes, counted by a
`rollups.counted(...)` where its flow settles a batch), and its own lines of trouble with `dashboard_troubles` in
its `VendorAdmin` (they link to its admin pages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from integrations import rollups


@dataclass(frozen=True)
class ActivitySeries:
    """One chart: the rollup `series` (of one `outcome`, or all when blank) per bucket, as its number of events
    ("count") or the sum of their values ("total", e.g. points)."""

    title: str
    series: str
    outcome: str = ""
    value: Literal["count", "total"] = "count"
    unit: str = ""


@dataclass(frozen=True)
class Trouble:
    """One line of the dashboard's "Needs attention" that a vendor adds (e.g. a failed First Orion push)."""

    client_id: int
    label: str
    url: str
    detail: str


def core_series() -> list[ActivitySeries]:
    return [
        ActivitySeries("Messages sent", rollups.MESSAGES, outcome="sent"),
        ActivitySeries("Callbacks received", rollups.CALLBACKS),
        ActivitySeries("Points awarded", rollups.POINTS, outcome="credit:applied", value="total", unit="points"),
    ]
