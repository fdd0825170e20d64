"""Reads off the primary (issue 22): with a replica configured, the dashboard, the large admin lists and CSV
downloads read from it; writes (an admin action, a save of a row read from the replica), reads inside a transaction
and reads after a write stay on the primary. Without a replica there is one database.

The replica here is Django's test mirror: a second alias, and a second connection, on the same test database
(portal/test_settings.py). Each test counts the statements each connection received."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import JobRun, VendorCall
from members.models import Member, SegmentMember
from portal.db_router import read_alias, reads_from_replica
from tests.factories import MemberFactory, SegmentFactory

ROOT = Path(__file__).resolve().parent.parent
BOTH = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
TABLE = re.compile(r'(?:FROM|JOIN|INTO|UPDATE) "?(\w+)')
WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER")


class Statements:
    """The SQL each database received inside `captured()`."""

    def __init__(self) -> None:
        self.primary: list[str] = []
        self.replica: list[str] = []

    def on_primary(self, table: str) -> list[str]:
        return [sql for sql in self.primary if names(table, sql)]

    def on_replica(self, table: str) -> list[str]:
        return [sql for sql in self.replica if names(table, sql)]

    def tables_on_primary(self) -> set[str]:
        return {table for sql in self.primary for table in TABLE.findall(sql)}

    def tables_on_replica(self) -> set[str]:
        return {table for sql in self.replica for table in TABLE.findall(sql)}

    def replica_writes(self) -> list[str]:
        return [sql for sql in self.replica if sql.lstrip().upper().startswith(WRITES)]


def names(table: str, sql: str) -> bool:
    """Whether `sql` names `table`, quoted (the ORM) or not (the export's COPY on PostgreSQL)."""
    return re.search(rf'(?<![\w"])"?{table}"?(?![\w"])', sql) is not None


@contextmanager
def captured() -> Iterator[Statements]:
    statements = Statements()
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        yield statements
    statements.primary = [query["sql"] for query in primary.captured_queries]
    statements.replica = [query["sql"] for query in replica.captured_queries]


@pytest.fixture
def with_replica(settings) -> str:
    settings.READ_REPLICA = "replica"
    return "replica"


@pytest.fixture
def calls(connection_a) -> list[VendorCall]:
    return [
        VendorCall.objects.create(connection=connection_a, method="POST", url=f"https://v.example/{n}", status_code=200)
        for n in range(3)
    ]


CALLS_TABLE = VendorCall._meta.db_table
MEMBERS_TABLE = Member._meta.db_table


@BOTH
def test_the_dashboard_reads_its_aggregates_from_the_replica(with_replica, admin_http, calls):
    with captured() as sql:
        page = admin_http.get(reverse("admin:index"))
    assert page.status_code == 200
    assert sql.on_replica(JobRun._meta.db_table), "the troubled runs were not read from the replica"
    # Everything the dashboard reads (cards, troubles, charts) comes from the replica; the primary serves only the
    # request's own plumbing (session, user, the admin's recent actions).
    assert sql.tables_on_primary() & sql.tables_on_replica() == set()
    assert sql.tables_on_primary() <= {"django_session", "auth_user", "django_admin_log", "django_content_type"}
    assert sql.replica_writes() == []


@BOTH
def test_a_large_admin_list_reads_its_rows_and_count_from_the_replica(with_replica, admin_http, calls):
    with captured() as sql:
        page = admin_http.get(reverse("admin:integrations_vendorcall_changelist"))
    assert page.status_code == 200 and "v.example/2" in page.content.decode()
    assert len(sql.on_replica(CALLS_TABLE)) >= 2  # the bounded count and the page's rows
    assert sql.on_primary(CALLS_TABLE) == []
    assert sql.replica_writes() == []


@BOTH
def test_an_admin_action_on_a_large_list_reads_and_writes_the_primary(with_replica, admin_http, client_a):
    member = MemberFactory(client=client_a)
    segment = SegmentFactory(client=client_a)
    with captured() as sql:
        admin_http.post(
            reverse("admin:members_member_changelist"),
            {"action": "add_to_segment", "_selected_action": [member.pk], "segment": segment.pk},
        )
    assert SegmentMember.objects.filter(segment=segment, member=member).exists()
    assert sql.on_primary(SegmentMember._meta.db_table)
    assert sql.replica == []


@BOTH
def test_a_csv_download_reads_the_members_from_the_replica(with_replica, api_client_for, client_a):
    segment = SegmentFactory(client=client_a)
    for n in range(3):
        segment.members.add(MemberFactory(client=client_a, phone=f"+1404555{n:04d}"))
    api = api_client_for(client_a)
    with captured() as sql:
        response = api.get(f"/api/segments/{segment.pk}/export/")
        body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and "+14045550002" in body
    assert sql.on_replica(MEMBERS_TABLE)
    assert sql.on_primary(MEMBERS_TABLE) == []
    assert sql.replica_writes() == []


@BOTH
def test_a_row_read_from_the_replica_is_saved_to_the_primary(with_replica, client_a):
    member = MemberFactory(client=client_a, first_name="Before")
    read = Member.objects.using("replica").get(pk=member.pk)
    with captured() as sql:
        read.first_name = "After"
        read.save(update_fields=["first_name"])
    assert sql.replica == []
    assert any(statement.startswith("UPDATE") for statement in sql.on_primary(MEMBERS_TABLE))
    assert Member.objects.get(pk=member.pk).first_name == "After"


@BOTH
def test_reads_in_a_transaction_or_after_a_write_stay_on_the_primary(with_replica, client_a):
    assert read_alias() == "replica"
    with transaction.atomic():
        assert read_alias() == "default"
    with captured() as sql, reads_from_replica():
        assert Member.objects.count() == 0  # replica
        MemberFactory(client=client_a)  # a write: the block's later reads must see it
        assert Member.objects.count() == 1  # primary
    assert len(sql.on_replica(MEMBERS_TABLE)) == 1
    assert sql.replica_writes() == []


@BOTH
def test_jobs_and_flows_outside_an_opt_in_read_the_primary(with_replica, client_a):
    MemberFactory(client=client_a)
    with captured() as sql:
        assert Member.objects.filter(client=client_a).count() == 1
    assert sql.replica == []


@BOTH
def test_without_a_replica_everything_uses_one_database(admin_http, calls, api_client_for, client_a):
    segment = SegmentFactory(client=client_a)
    with captured() as sql:
        assert admin_http.get(reverse("admin:index")).status_code == 200
        assert admin_http.get(reverse("admin:integrations_vendorcall_changelist")).status_code == 200
        b"".join(api_client_for(client_a).get(f"/api/segments/{segment.pk}/export/").streaming_content)
    assert sql.replica == []
    assert sql.on_primary(CALLS_TABLE)


def settings_in_a_fresh_process(**environment: str) -> str:
    """What portal.settings makes of `environment`: the database aliases and the routers."""
    code = (
        "from portal import settings as s; "
        "print(sorted(s.DATABASES), s.READ_REPLICA or '-', s.DATABASE_ROUTERS, "
        "s.DATABASES.get('replica', {}).get('NAME'))"
    )
    inherited = {name: value for name, value in os.environ.items() if name != "DATABASE_REPLICA_URL"}
    env = {**inherited, "ENV_FILE": "", "DEBUG": "true", **environment}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


def test_database_replica_url_adds_the_replica_alias_and_its_router():
    replica = "postgres://reader@replica.internal:5432/portal"
    printed = settings_in_a_fresh_process(DATABASE_URL="postgres://app@primary.internal:5432/portal",
                                          DATABASE_REPLICA_URL=replica)  # fmt: skip
    assert printed == "['default', 'replica'] replica ['portal.db_router.PrimaryReplicaRouter'] portal"
    assert settings_in_a_fresh_process() == "['default'] - [] None"
