"""Reads off the primary: the dashboard, the large admin lists and CSV downloads read from the replica
(settings.READ_REPLICA, set by DATABASE_REPLICA_URL); everything else, and every write, uses the primary.

Reads go to the replica only where the code opts in, never by default: a replica lags the primary by a moment, and
a flow or a job that read a row it had just written (or a row another process is about to change under a lock)
from the replica would act on stale data. The opt-ins:

- `reads_from_replica()`, a context manager for code that builds a whole page (the dashboard): the router sends the
  block's reads to the replica — unless a transaction is open on the primary, or the block has written (its reads
  after that see its own write on the primary);
- `read_alias()`, the alias for a lazily evaluated read (an admin list's queryset, a streamed CSV), to give to
  `.using()` or `connections[…]`.

The router also keeps every write on the primary, whatever database the instance was read from (Django would
otherwise save an instance read from the replica back to the replica), and never migrates the replica (it copies
the primary). Without a replica the router is not installed and both opt-ins name the primary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections


@dataclass
class ReplicaReads:
    """The state of one `reads_from_replica()` block."""

    wrote: bool = False


_replica_reads: ContextVar[ReplicaReads | None] = ContextVar("replica_reads", default=None)


def replica_alias() -> str:
    """The replica's database alias, or "" without one."""
    alias = getattr(settings, "READ_REPLICA", "")
    return alias if alias in settings.DATABASES else ""


def read_alias() -> str:
    """Where an opted-in read goes now: the replica, unless there is none or a transaction is open on the primary
    (a read inside a transaction must see the transaction's own writes)."""
    replica = replica_alias()
    if not replica or connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return replica


@contextmanager
def reads_from_replica() -> Iterator[None]:
    """The block's ORM reads go to the replica (see the module's doc for when they stay on the primary)."""
    token = _replica_reads.set(ReplicaReads())
    try:
        yield
    finally:
        _replica_reads.reset(token)


class PrimaryReplicaRouter:
    """settings.DATABASE_ROUTERS when a replica is configured."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        block = _replica_reads.get()
        if block is None or block.wrote:
            return None  # Django's own choice: the instance's database, else the primary
        return read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        block = _replica_reads.get()
        if block is not None:
            block.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # Both databases hold the same rows: an instance read from the replica may be related to one from the primary.
        both = {DEFAULT_DB_ALIAS, replica_alias()}
        return True if {obj1._state.db, obj2._state.db} <= both else None

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return False if db == replica_alias() else None
