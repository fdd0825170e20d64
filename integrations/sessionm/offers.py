"""SessionM's wallet scan: the scheduled job that reads the wallets of reachable members, a slice per run from a
cursor, under a renewable hold on the connection's scan (integrations/sessionm/wallet.py records each wallet).
"""

from __future__ import annotations

import time as clock
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.connections import usable
from integrations.http import NotFound, VendorError
from integrations.job_runs import Counts, lease_holder, release_leases_of, report_progress, running_since
from integrations.models import Connection
from integrations.outcome import NotReady
from integrations.sessionm.api import ConnectRejected, SessionMAPI
from integrations.sessionm.connection import UNKNOWN_USER, VENDOR, sessionm_api
from integrations.sessionm.models import OfferScan
from integrations.sessionm.spec import DEFAULT_WARNING_DAYS
from integrations.sessionm.wallet import record_wallet
from members.models import Member

# A wallet scan reads for at most this long (and at most this long's worth of reads at the connection's rate limit):
# well inside the task's 540 s soft time limit and the 15-minute schedule, so runs never pile up, a slow SessionM
# stops a run early, and a large client is covered over several runs.
SCAN_SECONDS = 300
# How long a run's hold on a connection's scan lasts past its last sign of progress: the run renews it with every
# wallet it records (many a second at the rate limit), so a killed run blocks the scan for at most this long — and
# not even that when its run is closed as interrupted (the hold is released then). Three times the read timeout of
# one attempt at a wallet (15 s, plus 3 s to connect). A read that retries can outlast it: if another run takes the
# scan over meanwhile, this one stops at its next wallet without committing it (renew_scan is a compare-and-set).
SCAN_LEASE = timedelta(seconds=45)
PROGRESS_EVERY = 100


def warning_days(connection: Connection) -> int:
    return int(connection.settings.get("offer_warning_days") or DEFAULT_WARNING_DAYS)


def scan_seconds() -> float:
    """The run's time budget (a setting only so that tests can make it tiny)."""
    return float(getattr(settings, "SESSIONM_SCAN_SECONDS", SCAN_SECONDS))


def scan_lease() -> timedelta:
    """How long a hold lasts past its last renewal (a setting only so that benches and tests can shorten it)."""
    return timedelta(seconds=getattr(settings, "SESSIONM_SCAN_LEASE_SECONDS", SCAN_LEASE.total_seconds()))


class ScanTakenOver(Exception):
    """Another run took the scan over (this run went a whole lease without recording a wallet): this run stops,
    and what it was recording is not committed."""


def members_per_run(connection: Connection) -> int:
    return max(1, int(connection.rate_limit_per_second * SCAN_SECONDS))


def scan_offers(client_id: int | None = None, limit: int | None = None) -> Counts:
    """The scheduled job: one slice of each usable SessionM connection's members, from where the last run stopped."""
    counts: Counter[str] = Counter()
    connections = usable(VENDOR).select_related("client")
    for connection in connections.filter(client_id=client_id) if client_id else connections:
        counts.update(scan_connection(connection, limit))
    return dict(counts)


def reachable_members(connection: Connection, after: int, limit: int) -> list[Member]:
    """Members who can get an SMS (opted in, a mobile number, active) and have a SessionM profile, by pk."""
    members = Member.objects.filter(
        client_id=connection.client_id, pk__gt=after, opted_in=True, status=Member.Status.ACTIVE
    ).exclude(phone="")
    members = members.filter(sessionm_profile__user_id__gt="").select_related("sessionm_profile", "client")
    return list(members.order_by("pk")[:limit])


def claim_scan(connection: Connection, now: datetime | None = None) -> OfferScan | None:
    """The scan of this connection, held by this run until it ends, or until it goes a whole lease without renewing
    its hold (a killed run). The returned row's `claimed_until` is the run's token: each renewal is a compare-and-set
    on the value the run wrote last, so a run whose hold was taken over finds out. A hold under this run's own task
    id is its killed earlier execution's (the task was redelivered): taken over at once."""
    scan, _ = OfferScan.objects.get_or_create(connection=connection)
    now = now or timezone.now()
    holder = lease_holder()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(holder=holder)
    if not OfferScan.objects.filter(free, pk=scan.pk).update(claimed_until=now + scan_lease(), holder=holder):
        return None
    scan.refresh_from_db()
    return scan


def renew_scan(scan: OfferScan, **fields: Any) -> None:
    """Hold the scan for another lease from now, writing `fields` in the same update; ScanTakenOver when another
    run holds it."""
    until = timezone.now() + scan_lease()
    if not OfferScan.objects.filter(pk=scan.pk, claimed_until=scan.claimed_until).update(claimed_until=until, **fields):
        raise ScanTakenOver
    scan.claimed_until = until


def release_scan(scan: OfferScan) -> None:
    """Free the scan, unless another run holds it now."""
    OfferScan.objects.filter(pk=scan.pk, claimed_until=scan.claimed_until).update(claimed_until=None, holder="")


def release_scans_of(task_ids: list[str]) -> None:
    """Runs closed as interrupted scan no more: their scans are free for the next run at once."""
    release_leases_of(OfferScan, task_ids, "claimed_until")


def scan_running_since(connection: Connection) -> str:
    """ "running since …" while a run holds the connection's scan, else "" (for the admin)."""
    scan = OfferScan.objects.filter(connection=connection, claimed_until__gte=timezone.now()).first()
    return running_since(scan.holder, connection.client) if scan is not None else ""


def scan_connection(connection: Connection, limit: int | None = None) -> Counts:
    """Read the next slice of wallets. Each member's offers, events and the cursor commit together, so a run
    killed midway repeats nothing and loses nothing; SessionM failing stops the run where it is."""
    counts: Counter[str] = Counter()
    scan = claim_scan(connection)
    if scan is None:
        return {"busy": 1}
    try:
        size = limit or members_per_run(connection)
        members = reachable_members(connection, scan.last_member_id, size)
        api = sessionm_api(connection)
        started = clock.monotonic()
        for n, member in enumerate(members, 1):
            read_wallet(api, connection, scan, member, counts)
            if n % PROGRESS_EVERY == 0:
                report_progress(dict(counts))
            if n < len(members) and clock.monotonic() - started > scan_seconds():
                # A slow SessionM: stop well inside the task's time limit; the next run goes on from the cursor.
                counts["out_of_time"] += 1
                return dict(counts)
        if len(members) < size:
            renew_scan(scan, last_member_id=0, passes=F("passes") + 1)
            counts["passes_completed"] += 1
    except (NotReady, VendorError):
        # SessionM failing or throttling: the run stops where it is (the call log marks the connection) and the
        # next run starts from the cursor.
        counts["stopped"] += 1
    except ScanTakenOver:
        # The run that took over goes on from the cursor; this one must not write anything more.
        counts["taken_over"] += 1
    finally:
        release_scan(scan)
    return dict(counts)


def read_wallet(api: SessionMAPI, connection: Connection, scan: OfferScan, member: Member, counts: Counter) -> None:
    """One member: read the wallet, record it and move the cursor past the member in one transaction, which also
    renews the run's hold (a run whose hold was taken over commits nothing). A member SessionM does not know (its
    user was removed there) is counted and passed; any other error (a wrong store id refuses every member alike)
    stops the run before the cursor moves."""
    try:
        offers = api.get_user_offers(member.sessionm_profile.user_id)
    except (ConnectRejected, NotFound) as exc:
        if exc.code != UNKNOWN_USER:
            raise
        counts["unknown_users"] += 1
        offers = None
    with transaction.atomic():
        recorded = record_wallet(member, offers, warning_days(connection)) if offers is not None else None
        renew_scan(scan, last_member_id=member.pk)
    if recorded is not None:  # counted once committed
        counts.update(recorded)
        counts["members"] += 1
