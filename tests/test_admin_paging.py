"""The admin's lists of tables that grow with traffic never count a whole table (issue 22): a bounded count
("more than 10,000") for filtered lists and on SQLite, the planner's estimate ("about N") for an unfiltered large
table on PostgreSQL."""

from __future__ import annotations

import re

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import JobRun, VendorCall
from portal.admin_paging import COUNT_LIMIT

pytestmark = pytest.mark.django_db

BIG_LISTS = [
    "integrations_vendorcall",
    "integrations_webhookevent",
    "integrations_jobrun",
    "members_outboundmessage",
    "members_loyaltyevent",
    "members_member",
]
FILTERS = {
    "integrations_vendorcall": "?method=GET",
    "integrations_webhookevent": "?status=received",
    "integrations_jobrun": "?outcome=failed",
    "members_outboundmessage": "?status=sent",
    "members_loyaltyevent": "?event_type=signed_up",
    "members_member": "?q=ann@example.com",
}


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def counts_in(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def assert_only_bounded_counts(queries: CaptureQueriesContext) -> None:
    for sql in counts_in(queries):
        assert f"LIMIT {COUNT_LIMIT + 1}" in sql, f"a count over the whole list: {sql}"


@pytest.mark.parametrize("table", BIG_LISTS)
@pytest.mark.parametrize("filtered", [False, True])
def test_a_big_list_is_never_counted_whole(admin_http, table, filtered):
    url = reverse(f"admin:{table}_changelist") + (FILTERS[table] if filtered else "")
    with CaptureQueriesContext(db) as queries:
        response = admin_http.get(url)
    assert response.status_code == 200
    assert_only_bounded_counts(queries)


def job_runs(count: int) -> None:
    JobRun.objects.bulk_create(JobRun(job="members.sync_members") for _ in range(count))


def test_more_rows_than_the_limit_read_more_than_n_and_the_pages_past_it_still_open(admin_http):
    job_runs(COUNT_LIMIT + 150)
    page = text_of(admin_http.get(reverse("admin:integrations_jobrun_changelist")))
    assert f"more than {COUNT_LIMIT:,} job runs" in page
    # Past the counted pages the rows are still there: page 102 shows rows 10,101 to 10,150.
    past = admin_http.get(reverse("admin:integrations_jobrun_changelist") + "?p=102")
    assert past.status_code == 200 and len(past.context["cl"].result_list) == 50


def test_a_small_list_reads_its_exact_count(admin_http):
    job_runs(3)
    assert "3 job runs" in text_of(admin_http.get(reverse("admin:integrations_jobrun_changelist")))


@pytest.mark.skipif(db.vendor != "postgresql", reason="the planner's estimate is PostgreSQL's")
def test_on_postgresql_an_unfiltered_large_table_reads_the_planners_estimate(admin_http, alice_http, connection_a):
    VendorCall.objects.bulk_create(
        VendorCall(connection=connection_a, method="GET", url="https://x/") for _ in range(COUNT_LIMIT + 5)
    )
    with db.cursor() as cursor:
        cursor.execute("ANALYZE integrations_vendorcall")
    url = reverse("admin:integrations_vendorcall_changelist")
    with CaptureQueriesContext(db) as queries:
        page = text_of(admin_http.get(url))
    assert re.search(r"about 10,0\d\d vendor calls", page)
    assert counts_in(queries) == []  # not even a bounded one
    # A client user's list is filtered to the client's rows: a bounded count.
    with CaptureQueriesContext(db) as queries:
        page = text_of(alice_http.get(url))
    assert f"more than {COUNT_LIMIT:,} vendor calls" in page
    assert_only_bounded_counts(queries) and counts_in(queries)
