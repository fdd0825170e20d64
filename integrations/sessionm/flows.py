"""SessionM use cases (seed 004): keep each member's SessionM profile in step (through the member-state reconciler,
so a failing SessionM defers and never drops), the welcome event once per member who signs up, the wallet scan that
turns offers into offer-issued and offer-expiring events exactly once, the forget of deleted members' profiles,
transactions relayed to Connect once per caller's id, and the eligible campaigns shown to support staff.

Messages are the portal's own: the events made here are sent by the message job (members/messaging.py) through
the client's templates and its SMS connection.
"""

from __future__ import annotations

import hashlib
import time as clock
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.signals import post_save, pre_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from integrations.connections import USABLE_STATUSES, api_for, usable, usable_connection
from integrations.http import AuthError, ExpectedAnswer, NotFound, Rejected, VendorError
from integrations.job_runs import (
    Counts,
    lease_holder,
    release_leases_of,
    report_progress,
    running_since,
    runs_interrupted,
)
from integrations.models import Client, Connection
from integrations.outcome import NotReady, Outcome
from integrations.queue import enqueue
from integrations.sessionm.api import ConnectIds, ConnectRejected, ExternalIdTaken, SessionMAPI, user_payload
from integrations.sessionm.models import (
    OfferScan,
    SessionMActivation,
    SessionMOffer,
    SessionMProfile,
    SessionMTransaction,
)
from integrations.sessionm.spec import DEFAULT_WARNING_DAYS
from members import sync
from members.flows import record_loyalty_event
from members.models import EventType, LoyaltyEvent, Member, MemberVendorState

VENDOR = "sessionm"
# The member fields a SessionM profile holds; a change of any of them updates the profile.
PROFILE_FIELDS = frozenset({"email", "phone", "first_name", "last_name", "opted_in"})
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
# Connect's and Core's code for a user SessionM does not know.
UNKNOWN_USER = "user_not_found"


# --- The connection ------------------------------------------------------------------------------------------------


def connect_ids(connection: Connection) -> ConnectIds | None:
    store_id, client_id = connection.settings.get("store_id"), connection.settings.get("connect_client_id")
    return ConnectIds(str(store_id), str(client_id)) if store_id and client_id else None


def sessionm_api(connection: Connection) -> SessionMAPI:
    if not connection.effective_base_url:
        raise NotReady(
            "Enter the SessionM tenant host as the connection's base URL (a site admin sets it), e.g. "
            "https://your-tenant.sessionm.com: SessionM has no shared default host."
        )
    return api_for(
        connection,
        SessionMAPI,
        api_key=connection.secret("api_key"),
        api_secret=connection.secret("api_secret"),
        connect_key=connection.secret("connect_api_key"),
        connect_secret=connection.secret("connect_api_secret"),
        connect_ids=connect_ids(connection),
    )


def check_connection(connection: Connection) -> str:
    """The verify check: a campaigns read for an external id that cannot exist (404 proves the Core key and secret)
    and a wallet read for a user that cannot exist (Connect's refusal of the user proves its credentials)."""
    api = sessionm_api(connection)
    if connect_ids(connection) is None:
        raise NotReady("Enter the Connect store_id and client_id in the connection's settings.")
    api.credentials_work()
    probe_connect(api)
    return f"Verified: the Core API and Connect credentials work at {connection.effective_base_url}."


# The verify probe's answer: Connect refusing the probe user as unknown (a refusal in its envelope, or a 404) is
# what the probe is meant to get, counted as "refused" (or "not found"), not as a failed call.
PROBE_USER_REFUSED = ExpectedAnswer(Rejected, code=UNKNOWN_USER)


def probe_connect(api: SessionMAPI) -> None:
    """The probe user does not exist: Connect accepting the envelope and credentials and refusing only the user
    (by its code, in a Connect answer or a 404) is the proof. Any other refusal (an unknown store_id or client_id)
    fails the verify with what to correct."""
    try:
        api.get_user_offers("portal-verify-probe", expected=PROBE_USER_REFUSED)
    except (ConnectRejected, NotFound) as exc:
        if exc.code != UNKNOWN_USER:
            raise Rejected(
                "SessionM",
                f"Connect refused the probe ({exc.message})",
                status=exc.status,
                code=exc.code,
                hint="Check the Connect store_id and client_id in the connection's settings (and the Connect key "
                "and secret, if they differ).",
            ) from exc


def explain_auth_failure(error: AuthError) -> str:
    return (
        f"SessionM rejected the credentials ({error.message}): check the Core API key and secret (and the Connect "
        f"key and secret, if they differ). {error.hint}"
    )


def usable_or_not_ready(client_id: int) -> Connection:
    connection = usable_connection(client_id, VENDOR)
    if connection is None:
        raise NotReady("SessionM is not active for this client: verify its SessionM connection first.")
    return connection


# --- Profiles (through the member-state reconciler) ---------------------------------------------------------------


def external_id(member: Member) -> str:
    """The portal's stable member key: never changes, whatever the member's ids or contact data become."""
    return f"portal-{member.pk}"


def profile_payload(member: Member) -> dict[str, Any]:
    return user_payload(
        external_id=external_id(member),
        email=member.email,
        phone=member.phone,
        first_name=member.first_name,
        last_name=member.last_name,
        opted_in=member.opted_in,
    )


def needs_sync(member: Member, changed_fields: set[str], previous: dict[str, Any]) -> bool:
    """Called by members/sync.record_change, in the change's own transaction, for clients with a SessionM
    connection — the one place every member path (admin, API, CSV import, Annex Cloud refresh) passes. So the
    welcome event is recorded here too; it is once per member by its key."""
    record_sign_up(member)
    if changed_fields & PROFILE_FIELDS:
        return True
    return not SessionMProfile.objects.filter(member=member).exclude(user_id="").exists()


@receiver(post_save, sender=Connection, dispatch_uid="sessionm.connection_saved")
def connection_saved(sender: type[Connection], instance: Connection, **kwargs: Any) -> None:
    """Note when a SessionM connection is first usable (verified, or saved active): the welcome's starting line."""
    if instance.vendor == VENDOR and instance.status in USABLE_STATUSES:
        SessionMActivation.objects.get_or_create(connection=instance, defaults={"first_active_at": timezone.now()})


def record_sign_up(member: Member) -> None:
    """One `signed_up` event per member who joined while SessionM is usable for the client and after it was first
    activated: members imported while the connection was a draft, or before it existed, are not welcomed when it is
    activated, nor members found through a vendor. Re-import, refresh and re-save find the event stored and add
    nothing."""
    if member.found_through:
        return  # found at a vendor (a Bazaarvoice reviewer at Annex Cloud): an existing member, not a sign-up
    key = f"signed-up-{member.pk}"
    joined_after = SessionMActivation.objects.filter(
        connection__client_id=member.client_id,
        connection__vendor=VENDOR,
        connection__status__in=USABLE_STATUSES,
        first_active_at__lte=member.created_at,
    )
    if LoyaltyEvent.objects.filter(client_id=member.client_id, external_id=key).exists() or not joined_after.exists():
        return
    record_loyalty_event(
        member.client, member, external_id=key, event_type=EventType.SIGNED_UP, occurred_at=member.created_at
    )


def profile_of(member: Member) -> SessionMProfile:
    """The member's profile row, stored (and committed: the reconciler holds no transaction) before any create is
    sent, so that a forget can find a user whose create answer was lost."""
    profile, _ = SessionMProfile.objects.get_or_create(
        client_id=member.client_id, external_id=external_id(member), defaults={"member": member}
    )
    return profile


def reconcile_member(connection: Connection, member: Member, state: MemberVendorState) -> dict[str, Any]:
    """Create or update the member's profile. A create whose answer was lost is found on the next attempt
    (SessionM refuses a second user with the external id; that user is adopted and updated)."""
    payload = profile_payload(member)
    profile = profile_of(member)
    if profile.user_id and state.confirmed.get("user") == payload:
        return state.confirmed
    api = sessionm_api(connection)
    created = False
    user: dict[str, Any] = {}
    if profile.user_id:
        try:
            user = api.update_user(profile.user_id, payload)
        except NotFound:
            profile.user_id = ""  # removed at SessionM meanwhile: created again below
    if not profile.user_id:
        user, created = create_or_adopt(api, payload)
    user_id = str(user.get("id") or profile.user_id)
    if not user_id:
        raise Rejected("SessionM", "answered without the user's id")
    if created and forget_requested(profile):
        return forget_created_user(api, profile, user_id, payload)
    SessionMProfile.objects.filter(pk=profile.pk).update(user_id=user_id, member=member)
    verb = "created at" if created else "updated at"
    return {"user": payload, "user_id": user_id, "summary": f"{member} {verb} SessionM (user {user_id})."}


def forget_requested(profile: SessionMProfile) -> bool:
    """Whether the member was deleted while the create was in flight (the forget may already have found no user)."""
    return SessionMProfile.objects.filter(pk=profile.pk, forget_requested_at__isnull=False).exists()


def forget_created_user(
    api: SessionMAPI, profile: SessionMProfile, user_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """The user just created belongs to a member deleted meanwhile: it is removed at once (else it would outlive the
    forget). Should SessionM fail now, the user id is kept and the forget sweep sends it again."""
    SessionMProfile.objects.filter(pk=profile.pk).update(user_id=user_id, forgotten_at=None)
    api.forget_user(user_id)
    SessionMProfile.objects.filter(pk=profile.pk).update(
        forgotten_at=timezone.now(), detail=f"Forgotten at SessionM (user {user_id}, created as it was deleted)."
    )
    return {"user": payload, "user_id": user_id, "summary": f"User {user_id} forgotten: its member was deleted."}


def create_or_adopt(api: SessionMAPI, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    try:
        return api.create_user(payload), True
    except ExternalIdTaken:
        existing = api.user_by_external_id(payload["user"]["external_id"])
        if not existing or not existing.get("id"):
            raise
        return api.update_user(str(existing["id"]), payload), False


def read_member_state(connection: Connection, member: Member) -> dict[str, Any]:
    """What SessionM holds for the member now (by external id), for the drift report."""
    user = sessionm_api(connection).user_by_external_id(external_id(member))
    return {"user": {key: user.get(key) for key in profile_payload(member)["user"]}} if user else {}


def differs(confirmed: dict[str, Any], now: dict[str, Any]) -> str:
    sent, held = (confirmed.get("user") or {}).get("user") or {}, now.get("user")
    if held is None:
        return "no user with the member's external id"
    changed = sorted(key for key, value in sent.items() if held.get(key) != value)
    return f"other {', '.join(changed)} than the portal sent" if changed else ""


def sync_profile(member: Member) -> Outcome:
    """ "Send to SessionM now": record the member as changed for SessionM and reconcile at once."""
    if usable_connection(member.client_id, VENDOR) is None:
        return Outcome.failure(f"SessionM is not active for {member.client}.")
    sync.bump(member, VENDOR)
    return sync.reconcile_now(member, VENDOR)


# --- Forget --------------------------------------------------------------------------------------------------------


@receiver(pre_delete, sender=Member, dispatch_uid="sessionm.member_deleted")
def member_deleted(sender: type[Member], instance: Member, **kwargs: Any) -> None:
    """A member deleted on request (from any path): the forget is recorded in the deletion's transaction, on the
    profile row, which outlives the member, and sent after commit; the scheduled sweep retries it while SessionM
    fails. The row exists from before the first create was sent (see reconcile_member), so a member without one was
    never sent to SessionM. Only existing rows are touched: when the whole client is deleted they go with it."""
    requested = SessionMProfile.objects.filter(
        client_id=instance.client_id, external_id=external_id(instance), forgotten_at__isnull=True
    ).update(forget_requested_at=timezone.now(), detail="Forget requested: waiting to be sent.")
    if requested:
        enqueue("sessionm.forget_profiles", instance.client_id)


def pending_forgets(client_id: int | None = None) -> QuerySet[SessionMProfile]:
    profiles = SessionMProfile.objects.filter(forget_requested_at__isnull=False, forgotten_at__isnull=True)
    return profiles.filter(client_id=client_id) if client_id else profiles


def forget_profiles(client_id: int | None = None) -> Counts:
    counts: Counter[str] = Counter()
    for profile in pending_forgets(client_id).order_by("pk"):
        counts[forget_profile(profile)] += 1
    return {key: counts.get(key, 0) for key in ("forgotten", "deferred")}


def forget_profile(profile: SessionMProfile) -> str:
    """Remove one profile at SessionM. A profile whose create may have been lost is looked up by external id."""
    connection = usable_connection(profile.client_id, VENDOR)
    if connection is None:
        profile.detail = "Waiting: the SessionM connection is not active; the forget is sent once it is."
        profile.save(update_fields=["detail"])
        return "deferred"
    try:
        api = sessionm_api(connection)
        user_id = profile.user_id or str((api.user_by_external_id(profile.external_id) or {}).get("id") or "")
        if user_id:
            api.forget_user(user_id)
    except (VendorError, NotReady) as exc:
        profile.detail = f"{exc.for_admin if isinstance(exc, VendorError) else exc} Will retry."
        profile.save(update_fields=["detail"])
        return "deferred"
    profile.forgotten_at = timezone.now()
    profile.detail = f"Forgotten at SessionM (user {user_id})." if user_id else "SessionM held no profile."
    profile.save(update_fields=["forgotten_at", "detail"])
    return "forgotten"


# --- Offers: the wallet scan ---------------------------------------------------------------------------------------


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


@receiver(runs_interrupted)
def release_scans_of_interrupted_runs(sender: Any, task_ids: list[str], **kwargs: Any) -> None:
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


def record_wallet(member: Member, offers: list[dict[str, Any]], window: int, now: datetime | None = None) -> Counts:
    """Record a member's offers and make each event once: offer_issued when an offer is first seen (and can still be
    used), offer_expiring when an unredeemed offer ends within `window` times 24 hours of now. Keys of the events are
    deterministic, so overlapping runs make each event once."""
    now = now or timezone.now()
    counts: Counter[str] = Counter()
    announce_new = not is_baseline_read(member)
    for raw in offers:
        offer, created = SessionMOffer.objects.get_or_create(
            member=member, offer_id=str(raw["id"])[:100], defaults={"client_id": member.client_id}
        )
        apply_offer_fields(offer, raw, member.client)
        counts["offers"] += 1
        if created and announce_new and is_live(offer, now):
            offer.issued_event = offer_event(member, offer, EventType.OFFER_ISSUED)
            counts["issued"] += 1
        if offer.expiring_event_id is None and expires_within(offer, window, now):
            offer.expiring_event = offer_event(member, offer, EventType.OFFER_EXPIRING)
            counts["expiring"] += 1
        offer.save()
    SessionMProfile.objects.filter(member=member, wallet_first_read_at__isnull=True).update(wallet_first_read_at=now)
    return counts


def is_baseline_read(member: Member) -> bool:
    """The first wallet read of a member who joined before SessionM was activated: what the wallet holds then was
    there before the portal watched it, so it is recorded without offer-issued events (expiring ones still go out
    when due). A member who joined later has every offer announced, the first read's too."""
    first_read = SessionMProfile.objects.filter(member=member, wallet_first_read_at__isnull=True).exists()
    joined_before = SessionMActivation.objects.filter(
        connection__client_id=member.client_id, connection__vendor=VENDOR, first_active_at__gt=member.created_at
    )
    return first_read and joined_before.exists()


def apply_offer_fields(offer: SessionMOffer, raw: dict[str, Any], client: Client) -> None:
    offer.name = str(raw.get("name") or "")[:255]
    offer.description = str(raw.get("description") or "")
    offer.redemption_end_date = parse_end_date(raw.get("redemption_end_date"), client)
    offer.redeemed = bool(raw.get("redeemed") or raw.get("is_redeemed"))


def parse_end_date(value: Any, client: Client) -> datetime | None:
    """SessionM's redemption_end_date: a timestamp (an offset, else UTC) or a date (the end of that day in the
    client's time zone); anything else (missing, malformed, impossible) is no end date."""
    if not isinstance(value, str) or not value:
        return None
    try:
        day = parse_date(value) if len(value) == 10 else None
        moment = None if day is not None else parse_datetime(value)
    except ValueError:
        # Well-formed but impossible ("2026-13-40"): read as no end date, so one bad offer never stops the scan.
        return None
    if day is not None:
        return datetime.combine(day, time.max, tzinfo=client.zone)
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def is_live(offer: SessionMOffer, now: datetime) -> bool:
    return not offer.redeemed and (offer.redemption_end_date is None or offer.redemption_end_date > now)


def time_left(offer: SessionMOffer, now: datetime) -> timedelta | None:
    """Real time from now to the offer's end. Both sides in UTC: Python subtracts two datetimes of the same zone as
    wall-clock times, which would be an hour off across a daylight-saving change."""
    if offer.redemption_end_date is None:
        return None
    return offer.redemption_end_date.astimezone(UTC) - now.astimezone(UTC)


def expires_within(offer: SessionMOffer, window: int, now: datetime) -> bool:
    """Unredeemed, not expired, and its end at most `window` times 24 hours from now: an instant, whatever the client's
    time zone (counting calendar days in that zone announced a 10.5-day offer up to a day early in Tokyo). An end
    date without a time ends at the end of that day in the client's zone (parse_end_date)."""
    left = time_left(offer, now)
    return is_live(offer, now) and left is not None and left <= timedelta(days=window)


def event_key(kind: str, member: Member, offer_id: str) -> str:
    key = f"sessionm-{kind}-{member.pk}-{offer_id}"
    if len(key) <= 100:
        return key
    return f"sessionm-{kind}-{member.pk}-{hashlib.sha256(offer_id.encode()).hexdigest()[:40]}"


def offer_event(member: Member, offer: SessionMOffer, event_type: str) -> LoyaltyEvent:
    client = member.client
    expires_on = client.format_date(client.local_date(offer.redemption_end_date)) if offer.redemption_end_date else ""
    data = {
        "offer_id": offer.offer_id,
        "offer_name": offer.name,
        "offer_description": offer.description,
        "expires_on": expires_on,
    }
    kind = "issued" if event_type == EventType.OFFER_ISSUED else "expiring"
    event, _ = record_loyalty_event(
        client, member, external_id=event_key(kind, member, offer.offer_id), event_type=event_type, data=data
    )
    return event


# --- Transactions --------------------------------------------------------------------------------------------------


class TransactionIdReused(Exception):
    """The caller's transaction id was used before for another transaction (another member or other details)."""


@dataclass(frozen=True)
class TransactionResult:
    transaction: SessionMTransaction
    repeated: bool


def send_transaction(member: Member, request_id: str, details: dict[str, Any]) -> TransactionResult:
    """Relay a purchase to Connect's send_transaction once per caller's transaction id. A repeat answers the stored
    answer without calling SessionM; one whose answer was lost (pending) is sent again with the same request_id,
    which SessionM answers with its original answer (idempotent on request_id)."""
    stored = SessionMTransaction.objects.filter(client_id=member.client_id, request_id=request_id).first()
    if stored is not None:
        refuse_other_use(stored, member, details)
        if stored.status != SessionMTransaction.Status.PENDING:
            return TransactionResult(stored, repeated=True)
    connection = usable_or_not_ready(member.client_id)
    txn = stored or new_transaction(member, request_id, details)
    relay(connection, txn)
    return TransactionResult(txn, repeated=False)


def new_transaction(member: Member, request_id: str, details: dict[str, Any]) -> SessionMTransaction:
    user_id = SessionMProfile.objects.filter(member=member).values_list("user_id", flat=True).first()
    if not user_id:
        raise NotReady(f"{member} has no SessionM profile yet: it is created shortly; try again in a minute.")
    # Stored (and committed) before the call: a lost answer leaves it pending, and a repeat sends it again.
    txn, created = SessionMTransaction.objects.get_or_create(
        client_id=member.client_id,
        request_id=request_id,
        defaults={"member": member, "request": {"user_id": user_id, "transaction": details}},
    )
    if not created:
        # A concurrent request with the same id stored it first: it must be the same transaction.
        refuse_other_use(txn, member, details)
    return txn


def refuse_other_use(stored: SessionMTransaction, member: Member, details: dict[str, Any]) -> None:
    if stored.member_id != member.pk or stored.request.get("transaction") != details:
        raise TransactionIdReused("This transaction id was already used for another member or other details.")


def relay(connection: Connection, txn: SessionMTransaction) -> None:
    Status = SessionMTransaction.Status
    try:
        answer = sessionm_api(connection).send_transaction(txn.request_id, txn.request)
    except Rejected as exc:
        txn.status, txn.detail = Status.REJECTED, exc.for_admin
        txn.response = {"status": "error", "errors": {"code": exc.code, "message": exc.message}}
    except VendorError as exc:
        txn.detail = f"{exc.for_admin} Repeat with the same transaction id to send it again (SessionM answers once)."
    else:
        txn.status, txn.response = Status.ACCEPTED, answer
        txn.detail = "Accepted by SessionM."
    txn.save(update_fields=["status", "response", "detail", "updated_at"])


# --- Campaigns -----------------------------------------------------------------------------------------------------


def eligible_campaigns(member: Member) -> Outcome:
    """The campaigns SessionM says the member is eligible for now (support staff, on demand): by user id, else by
    the portal's external id."""
    campaigns = campaigns_for(member)
    if not campaigns:
        return Outcome.success(f"{member}: no eligible SessionM campaigns.")
    names = ", ".join(str(c.get("name") or c.get("id")) for c in campaigns)
    return Outcome.success(f"{member}: eligible SessionM campaigns: {names}.")


def campaigns_for(member: Member) -> list[dict[str, Any]]:
    """SessionM's eligible campaigns of the member, as it answers them (raises NotReady or a VendorError)."""
    connection = usable_or_not_ready(member.client_id)
    user_id = SessionMProfile.objects.filter(member=member).values_list("user_id", flat=True).first() or ""
    return sessionm_api(connection).campaigns(user_id=user_id, external_id=external_id(member))
