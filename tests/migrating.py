"""Taking the test database to a migration and back, for tests of what an upgrade does to the rows it finds."""

from __future__ import annotations

from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    """The database migrated (forwards or back) to `targets`; the executor's loader knows each state on the way."""
    executor = MigrationExecutor(db_connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def migrate_to_latest() -> MigrationExecutor:
    return migrate(MigrationExecutor(db_connection).loader.graph.leaf_nodes())
