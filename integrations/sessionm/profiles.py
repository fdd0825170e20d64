"""SessionM profiles: each member's SessionM user kept in step through the member-state reconciler
(members/sync.py), so a failing SessionM defers and never drops a change.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from integrations.connections import usable_connection
from integrations.http import NotFound, Rejected
from integrations.models import Connection
from integrations.outcome import Outcome
from integrations.sessionm.api import ExternalIdTaken, SessionMAPI, user_payload
from integrations.sessionm.connection import VENDOR, sessionm_api
from integrations.sessionm.models import SessionMProfile
from integrations.sessionm.welcome import record_sign_up
from members import sync
from members.models import Member, MemberVendorState

# The member fields a SessionM profile holds; a change of any of them updates the profile.
PROFILE_FIELDS = frozenset({"email", "phone", "first_name", "last_name", "opted_in"})


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
