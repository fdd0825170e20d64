"""Keyset paging for the admin's log lists (vendor calls, webhook events, job runs): newest first, and an "Older"
link that carries the last row's (time, id) instead of a page number, so the 100th page costs what the first costs.

`?p=100` makes the database read and throw away 4,950 rows (OFFSET) before the 50 it shows, and at 10 million rows a
deep page takes seconds. `?before=<time>,<id>` starts an index scan of the time column right after the last row
shown, whatever the depth (issue 22). A bare time (`?before=2026-05-01`) opens the list at that moment.

Filters and the search box keep working: the Older link keeps their parameters, and a changed filter or search
starts again at the newest rows. The count in the footer is the paginator's (portal/admin_paging.py: an estimate or a
bounded count), never a count of the whole table.

A ModelAdmin uses it with `KeysetPagingMixin` and `keyset_field = "<indexed time column>"`; its list is always in
that order (its columns do not sort: any other order would be a sort of the whole table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

CURSOR_VAR = "before"


@dataclass(frozen=True)
class Cursor:
    """Rows strictly older than this point: (moment, id), or just the moment when opened at a time."""

    moment: datetime
    pk: int | None = None

    def __str__(self) -> str:
        moment = self.moment.astimezone(UTC).isoformat()
        return moment if self.pk is None else f"{moment},{self.pk}"

    def older_rows(self, field: str) -> Q:
        """The rows after this point in (field DESC, pk DESC) order. The `field <= moment` term is redundant but
        lets the database start its index scan at the point (an OR alone is not an index range)."""
        if self.pk is None:
            return Q(**{f"{field}__lt": self.moment})
        return Q(**{f"{field}__lte": self.moment}) & (
            Q(**{f"{field}__lt": self.moment}) | Q(**{field: self.moment, "pk__lt": self.pk})
        )


def parse_cursor(text: str | None) -> Cursor | None:
    """`2026-05-01T10:00:00.123456+00:00,123` or `2026-05-01`; None when absent. A malformed one is a bad lookup
    (the admin then shows the list with its "invalid parameters" note)."""
    if not text:
        return None
    moment_text, _, pk_text = text.partition(",")
    try:
        moment = parse_datetime(moment_text.strip())
        pk = int(pk_text) if pk_text else None
    except ValueError as exc:
        raise IncorrectLookupParameters(f"{CURSOR_VAR}: {text!r}") from exc
    if moment is None:
        raise IncorrectLookupParameters(f"{CURSOR_VAR}: {text!r}")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    return Cursor(moment, pk)


def cursor_after(row: Model, field: str) -> Cursor:
    return Cursor(getattr(row, field), row.pk)


class KeysetChangeList(ChangeList):
    """A change list that shows one page of rows older than the cursor, and links to the next older page."""

    keyset_paged = True  # the footer's template (admin/integrations/pagination.html) shows Newest/Older links

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.cursor = parse_cursor(request.GET.get(CURSOR_VAR))
        self.older_url: str | None = None
        self.newest_url: str | None = None
        super().__init__(request, *args, **kwargs)
        # Not a filter: the search form's hidden inputs must not carry it into a new search either.
        self.params.pop(CURSOR_VAR, None)

    def get_filters_params(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(CURSOR_VAR, None)
        return lookup_params

    def get_query_string(self, new_params: dict[str, Any] | None = None, remove: list[str] | None = None) -> str:
        """Links to a filter, a search or a date start at the newest rows again; only the Older link sets a cursor."""
        return super().get_query_string({CURSOR_VAR: None, **(new_params or {})}, remove)

    def get_results(self, request: HttpRequest) -> None:
        field = self.model_admin.keyset_field
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        if self.cursor is not None:
            rows = self.queryset.filter(self.cursor.older_rows(field))
        elif self.page_num > 1:  # a link to ?p=N from before keyset paging: still opens (at OFFSET's cost)
            rows = self.queryset[(self.page_num - 1) * self.list_per_page :]
        else:
            rows = self.queryset
        fetched = list(rows[: self.list_per_page + 1])  # one more than shown: is there an older page?
        self.result_list = fetched[: self.list_per_page]
        if len(fetched) > self.list_per_page:
            self.older_url = self.get_query_string({CURSOR_VAR: str(cursor_after(self.result_list[-1], field))})
        if self.cursor is not None or self.page_num > 1:
            self.newest_url = self.get_query_string()
        self.result_count = paginator.count  # LargeTablePaginator: an estimate or a bounded count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.full_result_count = None
        self.can_show_all = False
        self.multi_page = False  # no page numbers: the Older and Newest links page instead
        self.paginator = paginator


class KeysetPagingMixin:
    """For a ModelAdmin of a log: its list pages by keyset on `keyset_field` (an indexed time column), newest first."""

    keyset_field: str
    sortable_by: tuple[str, ...] = ()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return KeysetChangeList

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return [f"-{self.keyset_field}", "-pk"]
