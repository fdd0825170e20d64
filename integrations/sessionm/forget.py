"""SessionM forget: the profile of a member deleted on request is removed at SessionM, after the deletion commits
and again by the scheduled sweep while SessionM fails.
"""

from __future__ import annotations

from collections import Counter

from django.db.models import QuerySet
from django.utils import timezone

from integrations.connections import usable_connection
from integrations.http import VendorError
from integrations.job_runs import Counts
from integrations.outcome import NotReady
from integrations.queue import enqueue
from integrations.sessionm.connection import VENDOR, sessionm_api
from integrations.sessionm.models import SessionMProfile
from integrations.sessionm.profiles import external_id
from members.models import Member


def request_forget(member: Member) -> None:
    """A member deleted on request (from any path): the forget is recorded in the deletion's transaction, on the
    profile row, which outlives the member, and sent after commit; the scheduled sweep retries it while SessionM
    fails. The row exists from before the first create was sent (see reconcile_member), so a member without one was
    never sent to SessionM. Only existing rows are touched: when the whole client is deleted they go with it."""
    requested = SessionMProfile.objects.filter(
        client_id=member.client_id, external_id=external_id(member), forgotten_at__isnull=True
    ).update(forget_requested_at=timezone.now(), detail="Forget requested: waiting to be sent.")
    if requested:
        enqueue("sessionm.forget_profiles", member.client_id)


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
