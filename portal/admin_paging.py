"""Paging for the admin's change lists of tables that grow with traffic, without ever counting the whole table.

`COUNT(*)` over millions of rows takes seconds on every view of a list (issue 22). So the count a list shows is:

- on PostgreSQL, for the unfiltered list of a large table: the planner's estimate (`pg_class.reltuples`, kept
  current by autovacuum's ANALYZE), shown as "about N";
- otherwise (a filter, a search, a client user's own rows, SQLite): the rows counted up to one more than
  COUNT_LIMIT, shown as "more than N" when there are more.

A ModelAdmin uses it with `paginator = LargeTablePaginator` and `show_full_result_count = False` (the second count
Django makes, of the unfiltered list, would count the whole table again)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import InvalidPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import QuerySet

# Above this many rows a list says "about N" (an estimate) or "more than N" (a bounded count).
COUNT_LIMIT = 10_000


def planner_estimate(queryset: QuerySet[Any]) -> int:
    """PostgreSQL's estimate of the rows of the queryset's table; -1 before the table was first analysed. A table
    partitioned by day (vendor calls, webhook events) is the sum of its partitions': autovacuum analyses those, never
    the partitioned table itself."""
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN bool_and(reltuples < 0) THEN -1 ELSE SUM(GREATEST(reltuples, 0)) END::bigint "
            "FROM pg_partition_tree(%s::regclass) AS tree JOIN pg_class ON pg_class.oid = tree.relid "
            "WHERE tree.isleaf",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def bounded_count(queryset: QuerySet[Any], limit: int = COUNT_LIMIT) -> int:
    """The rows of `queryset`, counted up to limit + 1 at most (`SELECT COUNT(*) FROM (… LIMIT limit + 1)`)."""
    return queryset.order_by()[: limit + 1].count()


class LargeTablePaginator(Paginator):
    """A paginator whose count never scans a whole large table; `count_in_words` is what the list's footer says."""

    # "exact", "about" (the planner's estimate) or "more than" (a bounded count that reached its limit).
    count_kind = "exact"

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if is_unfiltered(queryset) and connections[queryset.db].vendor == "postgresql":
            estimate = planner_estimate(queryset)
            if estimate > COUNT_LIMIT:
                self.count_kind = "about"
                return estimate
        counted = bounded_count(queryset)
        if counted > COUNT_LIMIT:
            self.count_kind = "more than"
            return COUNT_LIMIT
        return counted

    @property
    def count_is_exact(self) -> bool:
        return self.count is not None and self.count_kind == "exact"  # the count first: it sets count_kind

    @property
    def count_in_words(self) -> str:
        number = f"{self.count:,}"
        return number if self.count_kind == "exact" else f"{self.count_kind} {number}"

    def validate_number(self, number: Any) -> int:
        """A page past the counted ones may still hold rows when the count is an estimate or a lower bound."""
        if self.count_is_exact:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError) as exc:
            raise PageNotAnInteger("That page number is not an integer") from exc
        if number < 1:
            raise InvalidPage("That page number is less than 1")
        return number

    def page(self, number: Any) -> Page:
        if self.count_is_exact:
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return Page(self.object_list[bottom : bottom + self.per_page], number, self)


def is_unfiltered(queryset: QuerySet[Any]) -> bool:
    """No WHERE clause and no DISTINCT: the rows of the whole table, so its estimate is the list's count."""
    query = queryset.query
    return not query.where and not query.distinct
