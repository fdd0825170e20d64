"""Keyset paging for the admin's log lists (vendor calls, webhook events, job runs): newest first, and an "Older"
link that carries the last row's (time, id) instead of a page number, so the 100th page costs what the first costs.

`?p=100` makes the database read and throw away 4,950 rows (OFFSET) before the 50 it shows, and at 10 million rows a
deep page takes seconds. `?before=<time>,<id>` starts an index scan of the time column right after the last row
shown, whatever the depth (issue 22). A bare time (`?before=2026-05-01`) opens the list at that moment.

Filters and the search box keep working: the Older link keeps their parameters, and a changed filter or search
starts again at the newest rows. The count in the footer is the paginator's (portal/admin_paging.py: an estimate or a
bounded count), never a count of the whole table.

A filter no index answers (a method, an error kind, a search for a status) would walk the log backwards until a page
fills: the whole log when nothing matches (seconds at 10 million calls a day). Such a page searches a bounded stretch
instead, the newest ADMIN_LOG_SEARCH_ROWS rows older than its cursor (found on the time index alone), shows the
matches there, and says how far back it searched; its Older link searches the next stretch.

A ModelAdmin uses it with `KeysetPagingMixin` and `keyset_field = "<indexed time column>"`; its list is always in
that order (its columns do not sort: any other order would be a sort of the whole table)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db import connections
from django.db.models import Field, Model, Q, QuerySet
from django.db.models.lookups import Exact, In
from django.db.models.sql.where import AND, WhereNode
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from portal.admin_paging import COUNT_LIMIT

if TYPE_CHECKING:
    from django.contrib import admin

CURSOR_VAR = "before"
# A list restricted to at most this many partitions (e.g. a vendor's connections) is read one partition at a time;
# past it, one read of the time index costs less than the partitions' probes.
MAX_PARTITIONS = 200


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


def restricted_ids(queryset: QuerySet[Any], column: str) -> set[int] | None:
    """The values the queryset's filters allow in `column` (`column = x` or `column IN (list)` at the top level of
    its WHERE, intersected), or None when no such filter restricts it. Filters that resolve a vendor, a client or a
    search term to connection ids first leave exactly this in the query."""
    allowed: set[int] | None = None
    for lookup in top_level_lookups(queryset.query.where):
        if getattr(getattr(lookup.lhs, "target", None), "column", None) != column:
            continue
        if isinstance(lookup, Exact) and isinstance(lookup.rhs, int):
            values = {lookup.rhs}
        elif isinstance(lookup, In) and isinstance(lookup.rhs, list | tuple | set | frozenset):
            values = set(lookup.rhs)
        else:
            continue
        allowed = values if allowed is None else allowed & values
    return allowed


def top_level_lookups(node: WhereNode) -> Iterable[Any]:
    """The lookups every row must match: the children of the WHERE's AND (and of ANDs inside it), never under an
    OR or a NOT."""
    if node.connector != AND or node.negated:
        return
    for child in node.children:
        if isinstance(child, WhereNode):
            yield from top_level_lookups(child)
        else:
            yield child


def partition_page(queryset: QuerySet[Any], column: str, ids: set[int], field: str, size: int) -> list[Model]:
    """The newest `size` rows of the queryset (already cut at the cursor) in (field DESC, pk DESC) order, read per
    partition from its (column, field) index: each partition's newest `size` rows, merged. Reading the time index
    alone for a filter matching few rows walks it backwards through everyone else's rows until a page fills."""
    order = [f"-{field}", "-pk"]
    parts = [queryset.filter(**{column: value}).order_by(*order).values_list(field, "pk")[:size] for value in ids]
    if connections[queryset.db].features.supports_slicing_ordering_in_compound:
        # PostgreSQL: one UNION ALL of per-partition LIMITs; the planner walks each partition's index once.
        keys = list(parts[0].union(*parts[1:], all=True).order_by(*order)[:size]) if len(parts) > 1 else list(parts[0])
    else:  # SQLite cannot order inside a compound: one query per partition, merged here
        keys = sorted((key for part in parts for key in part), reverse=True)[:size]
    pks = [pk for _, pk in keys]
    if not keys:
        return []
    # The page's time span too: on PostgreSQL the call log is partitioned by day and has no index on its id alone.
    span = {f"{field}__gte": keys[-1][0], f"{field}__lte": keys[0][0]}
    rows = {row.pk: row for row in queryset.filter(pk__in=pks, **span)}
    return [rows[pk] for pk in pks if pk in rows]


def partition_count(queryset: QuerySet[Any], column: str, ids: set[int], limit: int) -> int:
    """The queryset's rows counted per partition (each from its index), up to limit + 1 in all."""
    total = 0
    for value in ids:
        total += queryset.filter(**{column: value}).order_by()[: limit + 1 - total].count()
        if total > limit:
            break
    return total


def answered_by_indexes(queryset: QuerySet[Any], indexed: set[str]) -> bool:
    """Whether every condition of the queryset is on an indexed column of its own table (AND-ed lookups only; a
    lookup through a join is not): then a page reads the index and stops when it is full, whatever the filters."""
    lookups = list(top_level_lookups(queryset.query.where))
    if len(lookups) != len(list(leaves(queryset.query.where))):
        return False  # an OR or a NOT: no single index range
    table = queryset.model._meta.db_table
    return all(
        getattr(lookup.lhs, "alias", None) == table and getattr(lookup.lhs.target, "column", None) in indexed
        for lookup in lookups
    )


def leaves(node: WhereNode) -> Iterable[Any]:
    for child in node.children:
        if isinstance(child, WhereNode):
            yield from leaves(child)
        else:
            yield child


def column_of(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column, f"{name} is a column of {model.__name__}"
    return field.column


def search_floor(model: type[Model], using: str, field: str, cursor: Cursor | None, rows: int) -> datetime | None:
    """The time of the `rows`-th newest row of the whole table older than the cursor (from the time index alone), or
    None when fewer are left: how far back one page of an unindexed filter searches."""
    older = model._default_manager.using(using).all()
    if cursor is not None:
        older = older.filter(**{f"{field}__lt": cursor.moment})
    return older.order_by(f"-{field}").values_list(field, flat=True)[rows : rows + 1].first()


class KeysetChangeList(ChangeList):
    """A change list that shows one page of rows older than the cursor, and links to the next older page."""

    keyset_paged = True  # the footer's template (admin/integrations/pagination.html) shows Newest/Older links
    model_admin: KeysetModelAdmin  # only KeysetPagingMixin.get_changelist makes this list

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.cursor = parse_cursor(request.GET.get(CURSOR_VAR))
        self.older_url: str | None = None
        self.newest_url: str | None = None
        # How far back this page searched, when its filters allow only a bounded search (see the module's notes).
        self.searched_back_to: datetime | None = None
        super().__init__(request, *args, **kwargs)
        # Not a filter: the search form's hidden inputs must not carry it into a new search either.
        self.params.pop(CURSOR_VAR, None)

    def get_filters_params(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        lookup_params = super().get_filters_params(params)
        lookup_params.pop(CURSOR_VAR, None)
        return lookup_params

    def get_query_string(self, new_params: dict[str, Any] | None = None, remove: Iterable[str] | None = None) -> str:
        """Links to a filter, a search or a date start at the newest rows again; only the Older link sets a cursor."""
        return super().get_query_string({CURSOR_VAR: None, **(new_params or {})}, remove)

    def get_results(self, request: HttpRequest) -> None:
        field = self.model_admin.keyset_field
        # LargeTablePaginator (portal/admin_paging.py): its count and the words it says it in are set here.
        paginator: Any = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        if self.cursor is not None:
            rows = self.queryset.filter(self.cursor.older_rows(field))
        elif self.page_num > 1:  # a link to ?p=N from before keyset paging: still opens (at OFFSET's cost)
            rows = self.queryset[(self.page_num - 1) * self.list_per_page :]
        else:
            rows = self.queryset
        partitions = self.partitions()
        floor = self.bounded_search_floor(partitions)
        if floor is not None:
            rows = rows.filter(**{f"{field}__gte": floor})
        if partitions is not None and not partitions:
            fetched = []  # the filter matches no partition (a vendor with no connection): no read of the table
            paginator.__dict__["count"] = 0
        elif partitions is not None:
            fetched = partition_page(rows, self.partition_column(), partitions, field, self.list_per_page + 1)
            if floor is None:
                paginator.__dict__["count"] = self.partitioned_count(paginator, partitions)
        else:
            fetched = list(rows[: self.list_per_page + 1])  # one more than shown: is there an older page?
        self.result_list = fetched[: self.list_per_page]
        if len(fetched) > self.list_per_page:
            self.older_url = self.get_query_string({CURSOR_VAR: str(cursor_after(self.result_list[-1], field))})
        elif floor is not None:  # every match of the searched stretch is shown: the next stretch is older
            self.searched_back_to = floor
            self.older_url = self.get_query_string({CURSOR_VAR: str(Cursor(floor))})
        if floor is not None:  # the matches of one stretch, counted by the page that read them
            paginator.__dict__["count"] = min(len(fetched), self.list_per_page)
            paginator.count_kind = "more than" if len(fetched) > self.list_per_page else "exact"
        if self.cursor is not None or self.page_num > 1:
            self.newest_url = self.get_query_string()
        self.result_count = paginator.count  # LargeTablePaginator: an estimate or a bounded count
        self.show_full_result_count = False
        self.show_admin_actions = True
        self.full_result_count = None
        self.can_show_all = False
        self.multi_page = False  # no page numbers: the Older and Newest links page instead
        self.paginator = paginator

    def bounded_search_floor(self, partitions: set[int] | None) -> datetime | None:
        """Where this page's search stops, for filters no index answers (None: the page reads to its end)."""
        if (self.cursor is None and self.page_num > 1) or partitions == set():
            return None  # an old ?p=N link (read as before), or a filter that matches no partition (nothing to read)
        model_admin = self.model_admin
        fields = [model_admin.keyset_field, *model_admin.keyset_indexed_fields(partitioned=partitions is not None)]
        indexed = {"id", *(column_of(self.model, name) for name in fields)}
        if (partition := getattr(model_admin, "keyset_partition", None)) is not None:
            indexed.add(partition)
        if answered_by_indexes(self.queryset, indexed):
            return None
        field, rows = self.model_admin.keyset_field, settings.ADMIN_LOG_SEARCH_ROWS
        return search_floor(self.model, self.queryset.db, field, self.cursor, rows)

    def partitions(self) -> set[int] | None:
        """The partitions (e.g. connections) the filters restrict the list to, when few enough to read each one."""
        column = getattr(self.model_admin, "keyset_partition", None)
        if column is None or (self.page_num > 1 and self.cursor is None):
            return None
        ids = restricted_ids(self.queryset, column)
        return ids if ids is not None and len(ids) <= MAX_PARTITIONS else None

    def partition_column(self) -> str:
        column = self.model_admin.keyset_partition
        assert column is not None  # partitions() answers a set only for an admin that names its column
        return column

    def partitioned_count(self, paginator: Any, partitions: set[int]) -> int:
        """The bounded count of LargeTablePaginator (portal/admin_paging.py), per partition from its index."""
        limit = COUNT_LIMIT
        counted = partition_count(self.queryset, self.partition_column(), partitions, limit)
        if counted > limit:
            paginator.count_kind = "more than"
            return limit
        return counted


class KeysetPagingMixin:
    """For a ModelAdmin of a log: its list pages by keyset on `keyset_field` (an indexed time column), newest first."""

    keyset_field: str
    # A foreign key column with an index on (it, keyset_field), e.g. "connection_id": a list its filters restrict to
    # a few of its values is read per value from that index (partition_page). None: always the time index.
    keyset_partition: str | None = None
    # Fields besides the time and the partition whose filters an index answers newest first (e.g. a status with a
    # (status, time) index): a page filtered by them reads to its end; any other filter searches a bounded stretch.
    keyset_indexed: ClassVar[tuple[str, ...]] = ()
    # ModelAdmin's own type for it, as a mixin listed first must declare it.
    sortable_by: ClassVar[list[str] | tuple[str, ...] | None] = ()

    def keyset_indexed_fields(self, *, partitioned: bool) -> tuple[str, ...]:
        """`keyset_indexed`, for a page read per partition or from the time index alone (an admin whose indexes
        answer a filter in one case only says so here)."""
        return self.keyset_indexed

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return KeysetChangeList

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        return (f"-{self.keyset_field}", "-pk")


if TYPE_CHECKING:

    class KeysetModelAdmin(KeysetPagingMixin, admin.ModelAdmin):
        """The admins KeysetChangeList serves: a ModelAdmin with the mixin's attributes (for the type checker)."""
