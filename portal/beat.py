"""Exactly one active `celery beat`: the database scheduler behind a lease.

Every beat process ticks; only the one holding the lease (a row in the database, so it works on SQLite and
PostgreSQL alike) sends due tasks, renewing the lease on each tick. A second beat finds the lease held and waits as
a standby; when the holder dies its lease expires (BEAT_LEASE_SECONDS) and the standby takes over.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db import connections as db_connections
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from integrations.models import BeatLease

logger = logging.getLogger(__name__)
LEASE = "celery-beat"
STANDBY_POLL_SECONDS = 2.0


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_or_renew(holder: str, *, lease_seconds: int | None = None) -> bool:
    """Take the lease if it is free or expired, or renew it if `holder` has it; True when `holder` holds it."""
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds or settings.BEAT_LEASE_SECONDS)
    taken = BeatLease.objects.filter(Q(holder=holder) | Q(expires_at__lt=now), name=LEASE).update(
        holder=holder, expires_at=expires, renewed_at=now
    )
    if taken:
        return True
    try:
        with transaction.atomic():
            BeatLease.objects.create(name=LEASE, holder=holder, expires_at=expires, renewed_at=now)
    except IntegrityError:
        return False  # another beat holds a live lease
    return True


def release(holder: str) -> None:
    """A beat stopping cleanly lets a standby take over at once, and keeps when it last ticked: a deleted row would
    read as "beat never ran here", and /healthz would stay 200 with no beat at all."""
    BeatLease.objects.filter(name=LEASE, holder=holder).update(expires_at=timezone.now())


class LeasedDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler that schedules only while it holds the beat lease."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.holder = holder_name()
        self.active = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            return self._tick_with_lease(*args, **kwargs)
        except (OperationalError, InterfaceError):
            # The database is gone for a while: stand by (another beat may take over) and keep trying, instead of
            # dying and leaving no beat at all when it comes back.
            logger.warning("beat %s: the database is unreachable; standing by", self.holder)
            db_connections.close_all()
            self.active = False
            return STANDBY_POLL_SECONDS

    def _tick_with_lease(self, *args: Any, **kwargs: Any) -> float:
        holds = acquire_or_renew(self.holder)
        if holds != self.active:
            self.active = holds
            logger.warning("beat %s is now %s", self.holder, "active" if holds else "a standby")
        if not holds:
            return STANDBY_POLL_SECONDS
        return min(super().tick(*args, **kwargs), settings.BEAT_LEASE_SECONDS / 3)

    def close(self) -> None:
        if self.active:
            release(self.holder)
        super().close()
