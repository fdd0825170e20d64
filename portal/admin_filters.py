"""List filters for tables of millions of rows whose choices never cost a scan of the table.

Django's filter on a plain column (`list_filter = ["event_type"]`) offers `SELECT DISTINCT column` of the whole
list on every view of the page: a full scan at 10 million rows (issue 22). These filters find their choices by
walking the column's index instead — the smallest value, then the smallest above it, and so on: one index probe per
distinct value (a "loose index scan"), in the rows the user may see."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

# A column with more distinct values than this is not a filter; the choices stop there.
MAX_CHOICES = 40


def distinct_by_index(queryset: QuerySet[Any], column: str, limit: int = MAX_CHOICES) -> list[Any]:
    """The distinct non-empty values of `column` in `queryset`, smallest first, one index probe each; `column`
    must lead an index of the table."""
    values: list[Any] = []
    rows = queryset.order_by(column).exclude(**{column: ""}).exclude(**{f"{column}__isnull": True})
    while len(values) < limit:
        above = rows if not values else rows.filter(**{f"{column}__gt": values[-1]})
        value = above.values_list(column, flat=True).first()
        if value is None:
            break
        values.append(value)
    return values


def indexed_values_filter(column: str, title: str) -> type[admin.SimpleListFilter]:
    """A filter on `column` (which leads an index) offering the values present in the user's rows."""

    class IndexedValuesFilter(admin.SimpleListFilter):
        parameter_name = column

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [(value, value) for value in distinct_by_index(model_admin.get_queryset(request), column)]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(**{column: self.value()}) if self.value() else queryset

    IndexedValuesFilter.title = title
    IndexedValuesFilter.__name__ = f"{column.title().replace('_', '')}Filter"
    return IndexedValuesFilter


def fixed_choices_filter(column: str, title: str, choices: Callable[[], list[str]]) -> type[admin.SimpleListFilter]:
    """A filter on `column` offering a fixed list of values (what the code can write there), with no query;
    `choices` is called when the page is drawn (the values may come from classes imported later)."""

    class FixedChoicesFilter(admin.SimpleListFilter):
        parameter_name = column

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [(choice, choice) for choice in choices()]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            return queryset.filter(**{column: self.value()}) if self.value() else queryset

    FixedChoicesFilter.title = title
    FixedChoicesFilter.__name__ = f"{column.title().replace('_', '')}Filter"
    return FixedChoicesFilter


def since_filter(column: str, title: str = "time") -> type[admin.SimpleListFilter]:
    """Rows at or after a moment (`<column>__gte=<ISO time>`, the parameter the dashboard's charts link with): the
    last hour, 24 hours or 7 days, or the moment given, shown as chosen so the list says it is cut."""

    class SinceFilter(admin.SimpleListFilter):
        parameter_name = f"{column}__gte"

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            now = timezone.now().replace(microsecond=0)
            recent = [(now - timedelta(hours=hours), label) for hours, label in SINCE_CHOICES]
            choices = [(moment.astimezone(UTC).isoformat(), label) for moment, label in recent]
            if (given := self.moment()) is not None:
                choices.insert(0, (self.value() or "", f"Since {given.astimezone(UTC):%Y-%m-%d %H:%M} UTC"))
            return choices

        def moment(self) -> datetime | None:
            """The moment asked for; a malformed one is a bad lookup (the admin shows its "invalid" note)."""
            if not self.value():
                return None
            try:
                moment = parse_datetime(self.value() or "")
            except ValueError:
                moment = None
            if moment is None:
                raise IncorrectLookupParameters(f"{self.parameter_name}: {self.value()!r}")
            return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            moment = self.moment()
            return queryset.filter(**{f"{column}__gte": moment}) if moment is not None else queryset

    SinceFilter.title = title
    SinceFilter.__name__ = f"{column.title().replace('_', '')}SinceFilter"
    return SinceFilter


SINCE_CHOICES = ((1, "Last hour"), (24, "Last 24 hours"), (24 * 7, "Last 7 days"))
